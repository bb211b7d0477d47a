// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Broadcast inputs are read at index 0 along their size-1 dims; the body is inlined with its
// constants hoisted to the top of the kernel; a bool result is stored as i1.

func.func @main(%a: memref<2x3x4xf32>, %out: memref<2x3x4xi1>) {
  %b = vision.weight @b : memref<3x1xf32>
  vision.map ins(%a, %b : memref<2x3x4xf32>, memref<3x1xf32>) outs(%out : memref<2x3x4xi1>) {onnx_node = "greater", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%x: f32, %y: f32):
    %h = arith.constant 5.000000e-01 : f32
    %s = arith.addf %y, %h : f32
    %c = arith.cmpf ogt, %x, %s : f32
    vision.yield %c : i1
  }
  func.return
}

// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK-NEXT: ^bb0(%[[I:.*]]: index, %[[J:.*]]: index, %[[K:.*]]: index):
// CHECK-DAG:    %[[H:.*]] = arith.constant 5.000000e-01 : f32
// CHECK-DAG:    %[[C0:.*]] = arith.constant 0 : index
// CHECK:        %[[X:.*]] = memref.load %a[%[[I]], %[[J]], %[[K]]] : memref<2x3x4xf32>
// CHECK-NEXT:   %[[Y:.*]] = memref.load %b[%[[J]], %[[C0]]] : memref<3x1xf32>
// CHECK-NEXT:   %[[S:.*]] = arith.addf %[[Y]], %[[H]] : f32
// CHECK-NEXT:   %[[R:.*]] = arith.cmpf ogt, %[[X]], %[[S]] : f32
// CHECK-NEXT:   memref.store %[[R]], %out[%[[I]], %[[J]], %[[K]]] : memref<2x3x4xi1>
// CHECK-NEXT:   scf.reduce
// CHECK-NEXT: }) {kernel_name = "map_greater", workgroup_size = 32 : i64{{.*}}}
