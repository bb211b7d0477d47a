// RUN: not visc-opt %s -p 'convert-math-to-llvm{library=cmath}' 2>&1 | filecheck %s

// CHECK: error: {{.*}}convert-math-to-llvm: unknown library 'cmath' (known: libdevice, libm)
builtin.module {
}
