// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// The work-group size comes from the schedule; the pass never invents one.
// CHECK: error: scf.parallel (kernel 'nowg'): needs a positive `workgroup_size` attribute
func.func @main(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    scf.reduce
  }) {kernel_name = "nowg"} : (index, index, index) -> ()
  func.return
}
