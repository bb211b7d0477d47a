// RUN: not visc-opt %s -p map-loops-to-gpu -t opencl 2>&1 | filecheck %s

// Ops outside the stage-4 vocabulary are reported with the kernel they are in.
// CHECK: error: kernel 'heap': cannot emit memref.alloc: no C lowering for this op
func.func @main(%x: memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  "scf.parallel"(%c0, %c4, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %m = memref.alloc() : memref<4xf32>
    %v = memref.load %m[%i] : memref<4xf32>
    memref.store %v, %x[%i] : memref<4xf32>
    scf.reduce
  }) {kernel_name = "heap", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
