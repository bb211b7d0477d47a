// RUN: not visc-opt %s -p 'vision-partition{cuts=nope}' 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: not visc-opt %s -p 'vision-partition{cuts=b}' 2>&1 | filecheck %s --check-prefix=EMPTY
// RUN: not visc-opt %s -p 'vision-partition{cuts=a,a}' 2>&1 | filecheck %s --check-prefix=TWICE
// RUN: not visc-opt %s -p 'vision-partition{cuts=a stages=2}' 2>&1 | filecheck %s --check-prefix=MODES
// RUN: not visc-opt %s -p 'vision-partition{stages=3}' 2>&1 | filecheck %s --check-prefix=MANY
// RUN: not visc-opt %s -p 'vision-partition{by_placement=true}' 2>&1 | filecheck %s --check-prefix=UNPLACED
// RUN: not visc-opt %s -p 'vision-partition{cuts=a devices=cpu}' 2>&1 | filecheck %s --check-prefix=DEVICES

// UNKNOWN:  error: {{.*}}vision-partition: no op comes from ONNX node 'nope' (nodes: a, b)
// EMPTY:    error: {{.*}}stage 1 would hold no compute op: cut 'b' comes after the last compute op
// TWICE:    error: {{.*}}stage 1 would hold no compute op: cuts 'a' and 'a' fall at the same place
// MODES:    error: {{.*}}choose exactly one of cuts, by_placement, stages (got cuts, stages)
// MANY:     error: {{.*}}cannot cut 2 compute ops into 3 non-empty stages
// UNPLACED: error: {{.*}}op 'a' has no placement tag; run vision-placement first
// DEVICES:  error: {{.*}}devices names 1 devices for 2 stages

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> attributes {vision.input_names = ["x"], vision.output_names = ["y"], vision.input_dtypes = ["float32"], vision.output_dtypes = ["float32"]} {
  %a = vision.map ins(%x : tensor<4xf32>) {onnx_node = "a"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  %b = vision.map ins(%a : tensor<4xf32>) {onnx_node = "b"} body {
  ^bb0(%e: f32):
    %n = arith.negf %e : f32
    vision.yield %n : f32
  } -> tensor<4xf32>
  func.return %b : tensor<4xf32>
}
