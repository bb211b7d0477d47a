// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// A loop that does not start at 0 is reported with its kernel and ONNX node.
// CHECK: error: scf.parallel (kernel 'shifted', ONNX node 'n1'): dimension 0 must run from 0 with step 1 (got lower bound 1, step 1)
func.func @main(%x: memref<8xf32>) {
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  "scf.parallel"(%c1, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    scf.reduce
  }) {kernel_name = "shifted", workgroup_size = 8 : i64, onnx_node = "n1"} : (index, index, index) -> ()
  func.return
}
