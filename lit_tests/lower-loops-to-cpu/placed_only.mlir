// RUN: visc-opt %s -p lower-vision-to-loops,lower-loops-to-cpu{placed_only=true} | filecheck %s

// Only loops of ops placed on the CPU become host functions; the others stay for map-loops-to-gpu.

func.func @main(%a: memref<8xf32>, %out: memref<8xf32>) {
  %t = vision.buffer offset 0 : memref<8xf32>
  vision.map ins(%a : memref<8xf32>) outs(%t : memref<8xf32>) {onnx_node = "neg", placement = "gpu", schedule = #vision.schedule<{wg = 8 : i64}>} body {
  ^bb0(%x: f32):
    %n = arith.negf %x : f32
    vision.yield %n : f32
  }
  vision.map ins(%t : memref<8xf32>) outs(%out : memref<8xf32>) {onnx_node = "abs", placement = "cpu", schedule = #vision.schedule<{wg = 8 : i64}>} body {
  ^bb0(%x: f32):
    %n = math.absf %x : f32
    vision.yield %n : f32
  }
  func.return
}

// CHECK:     sym_name = "cpu_map_abs"
// CHECK-NOT: cpu_map_neg
// CHECK:     func.func @main
// CHECK:       "scf.parallel"
// CHECK:       placement = "gpu"
// CHECK:       "gpu.launch_func"{{.*}}@cpu_kernels::@cpu_map_abs
