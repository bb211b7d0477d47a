// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s --check-prefix=CPU
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu}' | filecheck %s --check-prefix=GPU

// A CPU thread reduces its plane in 4 independent chains (one chain waits on every add;
// 4 measured faster than 16 on AVX-512), never more chains than the plane has elements.
// GPUs keep one chain per thread (their parallelism is across threads).

// CPU-LABEL: func.func @gap
// CPU: schedule = #vision.schedule<{partials = 4 : i64, wg = {{[0-9]+}} : i64}>
// GPU-LABEL: func.func @gap
// GPU: schedule = #vision.schedule<{wg = {{[0-9]+}} : i64}>
func.func @gap(%x : tensor<1x96x56x56xf32>) -> tensor<1x96x1x1xf32> {
  %y = vision.global_pool ins(%x : tensor<1x96x56x56xf32>) {kind = "avg", onnx_node = "gap"} -> tensor<1x96x1x1xf32>
  func.return %y : tensor<1x96x1x1xf32>
}

// CPU-LABEL: func.func @tiny
// CPU: schedule = #vision.schedule<{partials = 2 : i64, wg = {{[0-9]+}} : i64}>
func.func @tiny(%x : tensor<1x8x1x2xf32>) -> tensor<1x8x1x1xf32> {
  %y = vision.global_pool ins(%x : tensor<1x8x1x2xf32>) {kind = "max", onnx_node = "tiny"} -> tensor<1x8x1x1xf32>
  func.return %y : tensor<1x8x1x1xf32>
}
