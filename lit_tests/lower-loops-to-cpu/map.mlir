// RUN: visc-opt %s -p lower-vision-to-loops,lower-loops-to-cpu | filecheck %s

// A 3-D loop becomes a host function over [begin, end) of its outer 2x3 space, with the
// innermost dimension as a counted loop; the host launches it over 6 outer points. (The
// operand %b broadcast along the middle dim keeps the map from coalescing its dims.)

func.func @main(%a: memref<2x3x4xf32>, %b: memref<2x1x4xf32>, %out: memref<2x3x4xf32>) {
  vision.map ins(%a, %b : memref<2x3x4xf32>, memref<2x1x4xf32>) outs(%out : memref<2x3x4xf32>) {onnx_node = "relu", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%x: f32, %y: f32):
    %m = arith.maximumf %x, %y : f32
    vision.yield %m : f32
  }
  func.return
}

// CHECK:      "gpu.module"() <{sym_name = "cpu_kernels"}>
// CHECK:      "gpu.func"() <{function_type = (memref<2x3x4xf32>, memref<2x1x4xf32>, memref<2x3x4xf32>, index, index) -> ()}>
// CHECK:      ^bb0(%[[A:.*]]: memref<2x3x4xf32>, %{{.*}}: memref<2x1x4xf32>, %[[O:.*]]: memref<2x3x4xf32>, %[[B:.*]]: index, %[[E:.*]]: index):
// CHECK:        scf.for %[[F:.*]] = %[[B]] to %[[E]] step
// CHECK:          arith.divui %[[F]]
// CHECK:          arith.remui %[[F]]
// CHECK:          scf.for
// CHECK:            memref.load %[[A]]
// CHECK:            arith.maximumf
// CHECK:            memref.store
// CHECK:      "gpu.return"()
// CHECK:      sym_name = "cpu_map_relu"
// CHECK:      func.func @main
// CHECK:        %[[N:.*]] = arith.constant 6 : index
// CHECK:        "gpu.launch_func"(%[[N]], {{.*}}) <{kernel = @cpu_kernels::@cpu_map_relu
// CHECK-SAME:   placement = "cpu"
