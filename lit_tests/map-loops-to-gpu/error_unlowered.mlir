// RUN: not visc-opt %s -p map-loops-to-gpu 2>&1 | filecheck %s

// Vision compute ops left in the host function are listed, all at once, by ONNX node.
// CHECK: error: map-loops-to-gpu: ops not lowered to loops (run lower-vision-to-loops first): vision.map (ONNX node 'relu1'); vision.map (ONNX node 'relu2')
func.func @main(%x: memref<4xf32>, %y: memref<4xf32>) attributes {vision.num_inputs = 1 : i64} {
  %t = vision.buffer offset 0 : memref<4xf32>
  vision.map ins(%x : memref<4xf32>) outs(%t : memref<4xf32>) {onnx_node = "relu1"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  vision.map ins(%t : memref<4xf32>) outs(%y : memref<4xf32>) {onnx_node = "relu2"} body {
  ^bb0(%a: f32):
    vision.yield %a : f32
  }
  func.return
}
