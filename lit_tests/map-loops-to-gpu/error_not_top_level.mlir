// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// A kernel loop under host control flow cannot become one launch of the plan.
// CHECK: error: scf.parallel (kernel 'inner'): kernels must be direct children of the function body, found one inside scf.for
func.func @main(%x: memref<8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  scf.for %r = %c0 to %c2 step %c1 {
    "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
    ^bb0(%i: index):
      scf.reduce
    }) {kernel_name = "inner", workgroup_size = 8 : i64} : (index, index, index) -> ()
  }
  func.return
}
