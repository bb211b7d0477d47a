// RUN: not visc-opt %s -t 'ptx{arch=gfx90a}' 2>&1 | filecheck %s

// CHECK: error: 'gfx90a' is not a CUDA architecture; use the form sm_80, sm_90, sm_90a
builtin.module {
}
