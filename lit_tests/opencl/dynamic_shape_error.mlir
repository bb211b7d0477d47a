// RUN: not visc-opt %s -p map-loops-to-gpu -t opencl 2>&1 | filecheck %s

// Accesses are linearized with static shapes only.
// CHECK: error: kernel 'dyn': dynamic memref shapes are not supported: memref<?xf32>
func.func @main(%x: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %v = memref.load %x[%i] : memref<?xf32>
    memref.store %v, %x[%i] : memref<?xf32>
    scf.reduce
  }) {kernel_name = "dyn", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
