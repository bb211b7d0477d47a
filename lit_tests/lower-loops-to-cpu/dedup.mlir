// RUN: visc-opt %s -p lower-vision-to-loops,lower-loops-to-cpu | filecheck %s

// Two relus of the same shape outline into structurally identical host functions: the
// CPU kernel module keeps one, and both launches call it (ResNet-50: 57 loops, 30 kernels).
// A relu of another size is a kernel of its own. (Maps run over their coalesced dims: 24
// and 16 elements.)

func.func @main(%a: memref<2x3x4xf32>, %b: memref<2x3x4xf32>, %c: memref<2x3x4xf32>, %d: memref<4x4xf32>, %e: memref<4x4xf32>) {
  vision.map ins(%a : memref<2x3x4xf32>) outs(%b : memref<2x3x4xf32>) {onnx_node = "relu1", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%x: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %x, %z : f32
    vision.yield %m : f32
  }
  vision.map ins(%b : memref<2x3x4xf32>) outs(%c : memref<2x3x4xf32>) {onnx_node = "relu2", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%x: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %x, %z : f32
    vision.yield %m : f32
  }
  vision.map ins(%d : memref<4x4xf32>) outs(%e : memref<4x4xf32>) {onnx_node = "relu3", schedule = #vision.schedule<{wg = 32 : i64}>} body {
  ^bb0(%x: f32):
    %z = arith.constant 0.000000e+00 : f32
    %m = arith.maximumf %x, %z : f32
    vision.yield %m : f32
  }
  func.return
}

// CHECK:      "gpu.module"() <{sym_name = "cpu_kernels"}>
// CHECK:      "gpu.func"() <{function_type = (memref<24xf32>, memref<24xf32>, index, index) -> ()}>
// CHECK:      sym_name = "[[K1:cpu_map_relu1]]"
// CHECK-NOT:  function_type = (memref<24xf32>, memref<24xf32>, index, index)
// CHECK:      "gpu.func"() <{function_type = (memref<16xf32>, memref<16xf32>, index, index) -> ()}>
// CHECK:      sym_name = "[[K3:cpu_map_relu3]]"
// CHECK:      func.func @main
// CHECK:        "gpu.launch_func"({{.*}}) <{kernel = @cpu_kernels::@[[K1]]
// CHECK:        "gpu.launch_func"({{.*}}) <{kernel = @cpu_kernels::@[[K1]]
// CHECK:        "gpu.launch_func"({{.*}}) <{kernel = @cpu_kernels::@[[K3]]
