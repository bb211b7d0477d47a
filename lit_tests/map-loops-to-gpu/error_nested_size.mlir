// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// A thread-level loop larger than the work-group cannot be mapped onto thread ids.
// CHECK: error: scf.parallel (kernel 'too_wide'): a nested scf.parallel has 16 iterations, more than the workgroup_size 8
func.func @main(%x: memref<2x16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c16 = arith.constant 16 : index
  "scf.parallel"(%c0, %c2, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%r: index):
    "scf.parallel"(%c0, %c16, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%t: index):
      %v = memref.load %x[%r, %t] : memref<2x16xf32>
      memref.store %v, %x[%r, %t] : memref<2x16xf32>
      scf.reduce
    }) : (index, index, index) -> ()
    scf.reduce
  }) {kernel_name = "too_wide", workgroup_size = 8 : i64} : (index, index, index) -> ()
  func.return
}
