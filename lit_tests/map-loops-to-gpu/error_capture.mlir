// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// Only memrefs and constants cross into a kernel: a host-computed index cannot.
// CHECK: error: scf.parallel (kernel 'uses_host_value', ONNX node 'add'): its body uses index value defined outside the loop by arith.addi
func.func @main(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %k = arith.addi %c1, %c1 : index
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %v = memref.load %x[%k] : memref<8xf32>
    memref.store %v, %x[%i] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "uses_host_value", workgroup_size = 8 : i64, onnx_node = "add"} : (index, index, index) -> ()
  func.return
}
