// RUN: visc-opt %s -p vision-bufferize,vision-concat-in-place | filecheck %s
// RUN: visc-opt %s -p 'vision-bufferize,vision-concat-in-place{align=4096}' | filecheck %s --check-prefix=WIDE
// RUN: visc-opt %s -p 'vision-bufferize,vision-concat-in-place,vision-default-schedule{target=opencl device_type=gpu},lower-vision-to-loops' | filecheck %s --check-prefix=LOOPS

// Producers write their slab of the concat output: the output buffer moves up to the first
// slab; the graph input %x cannot be placed, so the concat still copies it (and only it).
// CHECK:         %c = vision.buffer offset 0 : memref<1x96x4x4xf32>
// CHECK-NEXT:    %a = vision.subbuffer %c offset 0 : memref<1x96x4x4xf32> -> memref<1x32x4x4xf32>
// CHECK-NEXT:    vision.map ins(%x : memref<1x32x4x4xf32>) outs(%a : memref<1x32x4x4xf32>) {onnx_node = "a"}
// CHECK:         %b = vision.subbuffer %c offset 2048 : memref<1x96x4x4xf32> -> memref<1x32x4x4xf32>
// CHECK-NEXT:    vision.map ins(%x : memref<1x32x4x4xf32>) outs(%b : memref<1x32x4x4xf32>) {onnx_node = "b"}
// CHECK:         vision.concat ins(%a, %b, %x : {{.*}}) outs(%c : memref<1x96x4x4xf32>) {axis = 1 : i64, onnx_node = "cat", in_place = [0 : i64, 1 : i64]}

// Slabs at 2048 bytes are not 4096-byte aligned: only the first input (offset 0) is placed.
// WIDE:          vision.subbuffer %{{.*}} offset 0 :
// WIDE-NOT:      vision.subbuffer
// WIDE:          vision.concat {{.*}} in_place = [0 : i64]

// The concat's lowering copies only the input not in place (one kernel, named after input 2).
// LOOPS-NOT:     concat_cat_0
// LOOPS-NOT:     concat_cat_1
// LOOPS:         kernel_name = "concat_cat_2"
// LOOPS-NOT:     concat_cat_
func.func @main(%x: tensor<1x32x4x4xf32>) -> tensor<1x96x4x4xf32> {
  %a = vision.map ins(%x : tensor<1x32x4x4xf32>) {onnx_node = "a"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x32x4x4xf32>
  %b = vision.map ins(%x : tensor<1x32x4x4xf32>) {onnx_node = "b"} body {
  ^bb0(%p: f32):
    %s = arith.addf %p, %p : f32
    vision.yield %s : f32
  } -> tensor<1x32x4x4xf32>
  %c = vision.concat ins(%a, %b, %x : tensor<1x32x4x4xf32>, tensor<1x32x4x4xf32>, tensor<1x32x4x4xf32>) {axis = 1 : i64, onnx_node = "cat"} -> tensor<1x96x4x4xf32>
  %d = vision.map ins(%c : tensor<1x96x4x4xf32>) {onnx_node = "d"} body {
  ^bb0(%p: f32):
    %s = arith.negf %p : f32
    vision.yield %s : f32
  } -> tensor<1x96x4x4xf32>
  func.return %d : tensor<1x96x4x4xf32>
}
