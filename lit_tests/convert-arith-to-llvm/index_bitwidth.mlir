// RUN: visc-opt %s -p 'convert-arith-to-llvm{index-bitwidth=64}' | filecheck %s

// With 64-bit indices, index values are i64 and casts to i32 truncate.
// CHECK:      %c7 = llvm.mlir.constant(7) : i64
// CHECK:      %n = llvm.trunc %c7 : i64 to i32
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = () -> (), kernel}> ({
      %c7 = arith.constant 7 : index
      %n = arith.index_cast %c7 : index to i32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
