// RUN: not visc-opt %s -p convert-arith-to-llvm 2>&1 | filecheck %s

// Vector comparisons have no lowering; the error names the kernel and its ONNX node.
// CHECK: error: kernel 'k' (ONNX node 'cmp'): cannot lower arith.cmpf to the llvm dialect: vector comparisons are not supported
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (vector<4xf32>) -> (), kernel}> ({
    ^bb0(%v: vector<4xf32>):
      %c = arith.cmpf olt, %v, %v : vector<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
  func.func @main(%v: vector<4xf32>) {
    %c1 = arith.constant 1 : index
    "gpu.launch_func"(%c1, %c1, %c1, %c1, %c1, %c1, %v) <{kernel = @kernels::@k, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0>}> {onnx_node = "cmp"} : (index, index, index, index, index, index, vector<4xf32>) -> ()
    func.return
  }
}
