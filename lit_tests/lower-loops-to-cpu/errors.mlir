// RUN: not visc-opt %s -p lower-loops-to-cpu 2>&1 | filecheck %s

// Top-level loops must have constant bounds starting at 0 with step 1.

func.func @main(%a: memref<8xf32>) {
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  "scf.parallel"(%c1, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %v = memref.load %a[%i] : memref<8xf32>
    memref.store %v, %a[%i] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "shifted", workgroup_size = 8 : i64} : (index, index, index) -> ()
  func.return
}

// CHECK: top-level loops need constant bounds 0 .. n step 1
