// RUN: not visc-opt %s -p convert-gpu-to-nvvm 2>&1 | filecheck %s

// gpu ops without an NVVM lowering are reported with the kernel and the ONNX node.
// CHECK: error: kernel 'k' (ONNX node 'n1'): cannot lower gpu.num_subgroups to the llvm dialect: no lowering is implemented for it
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = () -> (), kernel}> ({
      %n = "gpu.num_subgroups"() : () -> index
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
  func.func @main() {
    %c1 = arith.constant 1 : index
    "gpu.launch_func"(%c1, %c1, %c1, %c1, %c1, %c1) <{kernel = @kernels::@k, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0>}> {onnx_node = "n1"} : (index, index, index, index, index, index) -> ()
    func.return
  }
}
