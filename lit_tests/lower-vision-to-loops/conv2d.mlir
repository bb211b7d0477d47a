// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// A 3x3 padded conv with bias and a fused relu epilogue, tile 2 channels x 2 columns per
// thread: 4 accumulators carried through kh, kw and the (innermost) input-channel loop;
// columns are cyclic (thread t owns columns t and t + 3), padding is masked by selects.

func.func @main(%x: memref<1x4x6x6xf32>, %out: memref<1x8x6x6xf32>) {
  %w = vision.weight @w : memref<8x4x3x3xf32>
  %b = vision.weight @b : memref<8xf32>
  vision.conv2d ins(%x, %w, %b : memref<1x4x6x6xf32>, memref<8x4x3x3xf32>, memref<8xf32>) outs(%out : memref<1x8x6x6xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "conv1", schedule = #vision.schedule<{wg = 64 : i64, tile_oc = 2 : i64, tile_ow = 2 : i64, unroll_k = 4 : i64}>} body {
  ^bb0(%a: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %a, %z : f32
    vision.yield %m : f32
  }
  func.return
}

// CHECK:      %w = vision.weight @w : memref<8x4x3x3xf32>
// CHECK-NEXT: %b = vision.weight @b : memref<8xf32>
// CHECK-DAG:  %[[C4:.*]] = arith.constant 4 : index
// CHECK-DAG:  %[[C6:.*]] = arith.constant 6 : index
// CHECK-DAG:  %[[C3:.*]] = arith.constant 3 : index
// CHECK-DAG:  %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:  %[[C1:.*]] = arith.constant 1 : index
// CHECK:      "scf.parallel"(%[[C0]], %[[C0]], %[[C0]], %[[C4]], %[[C6]], %[[C3]], %[[C1]], %[[C1]], %[[C1]]) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK-NEXT: ^bb0(%[[OT:.*]]: index, %[[OH:.*]]: index, %[[T:.*]]: index):
// CHECK:        %[[OC0:.*]] = arith.muli %[[OT]], %{{.*}} : index
// CHECK:        %[[OC1:.*]] = arith.addi %[[OC0]], %{{.*}} : index
// CHECK:        scf.for %[[KH:.*]] = {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32) {
// CHECK:          arith.cmpi sge
// CHECK:          arith.cmpi slt
// CHECK:          scf.for %[[KW:.*]] = {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32) {
// CHECK:            scf.for %[[CI:.*]] = {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32) {
// CHECK-NEXT:         %[[X0:.*]] = memref.load %x[{{.*}}, %[[CI]], {{.*}}, {{.*}}] : memref<1x4x6x6xf32>
// CHECK-NEXT:         arith.select %{{.*}}, %[[X0]], %{{.*}} : f32
// CHECK-NEXT:         memref.load %x
// CHECK-NEXT:         arith.select
// CHECK-NEXT:         memref.load %w[%[[OC0]], %[[CI]], %[[KH]], %[[KW]]] : memref<8x4x3x3xf32>
// CHECK-NEXT:         memref.load %w[%[[OC1]], %[[CI]], %[[KH]], %[[KW]]] : memref<8x4x3x3xf32>
// CHECK-COUNT-4:      math.fma
// CHECK:              scf.yield
// CHECK-NEXT:       } {vision.unroll = 4 : i64}
// CHECK:        memref.load %b[%[[OC0]]] : memref<8xf32>
// CHECK:        %[[M:.*]] = arith.maximumf
// CHECK-NEXT:   memref.store %[[M]], %out[%{{.*}}, %[[OC0]], %[[OH]], %[[T]]] : memref<1x8x6x6xf32>
// CHECK-COUNT-3: memref.store
// CHECK:        scf.reduce
// CHECK-NEXT: }) {kernel_name = "conv2d_conv1", workgroup_size = 64 : i64{{.*}}}
// CHECK-NOT:  vision.conv2d
