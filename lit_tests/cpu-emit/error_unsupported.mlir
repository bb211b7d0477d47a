// RUN: not visc-opt %s -t cpu 2>&1 | filecheck %s

// An op the emitter has no lowering for is reported with its function, the ONNX node that
// launches it and the op.
// CHECK: visc-opt: error: cpu target: kernel 'cpu_k' (ONNX node 'n0'): cannot emit arith.addui_extended as LLVM IR: no LLVM lowering for this op
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xi32>, index, index) -> ()}> ({
    ^bb0(%x: memref<4xi32>, %begin: index, %end: index):
      %v = memref.load %x[%begin] : memref<4xi32>
      %s, %o = arith.addui_extended %v, %v : i32, i1
      memref.store %s, %x[%begin] : memref<4xi32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_k"} : () -> ()
  }) : () -> ()
  func.func @main(%in: memref<4xi32>) {
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    "gpu.launch_func"(%c4, %c1, %c1, %c1, %c1, %c1, %in) <{kernel = @cpu_kernels::@cpu_k, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0>}> {onnx_node = "n0"} : (index, index, index, index, index, index, memref<4xi32>) -> ()
    func.return
  }
}
