// RUN: visc-opt %s -p lower-vision-to-loops,lower-loops-to-cpu | filecheck %s

// A loop whose outer space is small (the 1x1 conv: batch 1 x 2 channel tiles x 1 row = 2
// points) and whose body is a register tile (vectors, its own channel loop) is walked over
// all its dims: the launch range is 2 x 8 column groups = 16 steps to share among threads,
// where 2 would leave cores idle. A plain map keeps its innermost dim as the counted loop
// LLVM vectorizes (range 2 x 3 = 6; its operand broadcast along dim 1 keeps the map's dims).

// CHECK:      "gpu.func"() <{function_type = (memref<1x4x1x64xf32>, memref<4x4x1x1xf32>, memref<1x4x1x64xf32>, index, index) -> ()}>
// CHECK-NEXT: ^bb0
// CHECK:        scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:    scf.for %{{[0-9]+}} = %{{[0-9]+}} to %{{[0-9]+}} step %{{[0-9]+}} {
// CHECK:        scf.for %{{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>) {
// CHECK:      sym_name = "cpu_conv2d_pw"
// CHECK:      "gpu.func"() <{function_type = (memref<2x3x4xf32>, memref<2x1x4xf32>, memref<2x3x4xf32>, index, index) -> ()}>
// CHECK:        scf.for
// CHECK:          scf.for
// CHECK:      sym_name = "cpu_map_relu"
// CHECK:      %[[N16:.*]] = arith.constant 16 : index
// CHECK:      "gpu.launch_func"(%[[N16]], {{.*}}) <{kernel = @cpu_kernels::@cpu_conv2d_pw
// CHECK:      %[[N6:.*]] = arith.constant 6 : index
// CHECK:      "gpu.launch_func"(%[[N6]], {{.*}}) <{kernel = @cpu_kernels::@cpu_map_relu

func.func @main(%x: memref<1x4x1x64xf32>, %w: memref<4x4x1x1xf32>, %y: memref<1x4x1x64xf32>, %a: memref<2x3x4xf32>, %c: memref<2x1x4xf32>, %b: memref<2x3x4xf32>) {
  vision.conv2d ins(%x, %w : memref<1x4x1x64xf32>, memref<4x4x1x1xf32>) outs(%y : memref<1x4x1x64xf32>) {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, groups = 1 : i64, onnx_node = "pw", schedule = #vision.schedule<{wg = 8 : i64, tile_oc = 2 : i64, tile_ow = 1 : i64, vec = 8 : i64}>}
  vision.map ins(%a, %c : memref<2x3x4xf32>, memref<2x1x4xf32>) outs(%b : memref<2x3x4xf32>) {onnx_node = "relu", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%v: f32, %z: f32):
    %m = arith.maximumf %v, %z : f32
    vision.yield %m : f32
  }
  func.return
}
