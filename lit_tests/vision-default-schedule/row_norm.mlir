// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu}' | filecheck %s
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=cpu}' | filecheck %s --check-prefix=CPU

// Row normalizations. GPUs: a thread per row where the rows alone fill the device or are too
// short to share (coop = 0, wg from the row count); else a work-group per row with a thread
// per 4 elements, a power of two up to the maximum. CPUs: always a thread per row, keeping 8
// independent partial sums (the lanes of a 256-bit vector) so the row's adds pipeline.

// 3136 rows of 96: too few rows for a GPU
// CHECK: vision.layer_norm {{.*}}schedule = #vision.schedule<{coop = 1 : i64, wg = 32 : i64}>
// CPU:   vision.layer_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, partials = 8 : i64, wg = 256 : i64}>
// 16384 rows: a thread each
// CHECK: vision.layer_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, wg = 256 : i64}>
// CPU:   vision.layer_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, partials = 8 : i64, wg = 256 : i64}>
// 64 rows (n, group) of 8 x 56 x 56 elements
// CHECK: vision.group_norm {{.*}}schedule = #vision.schedule<{coop = 1 : i64, wg = 256 : i64}>
// CPU:   vision.group_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, partials = 8 : i64, wg = 8 : i64}>
// 4 rows of 12: too short to share
// CHECK: vision.group_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, wg = 4 : i64}>
// CPU:   vision.group_norm {{.*}}schedule = #vision.schedule<{coop = 0 : i64, partials = 8 : i64, wg = 4 : i64}>
func.func @main(%t: tensor<1x56x56x96xf32>, %w: tensor<16384x16xf32>, %x: tensor<2x256x56x56xf32>, %g: tensor<2x6x2x2xf32>)
    -> (tensor<1x56x56x96xf32>, tensor<16384x16xf32>, tensor<2x256x56x56xf32>, tensor<2x6x2x2xf32>) {
  %c = vision.weight @c : tensor<96xf32>
  %c16 = vision.weight @c16 : tensor<16xf32>
  %c256 = vision.weight @c256 : tensor<256xf32>
  %c6 = vision.weight @c6 : tensor<6xf32>
  %a = vision.layer_norm ins(%t, %c, %c : tensor<1x56x56x96xf32>, tensor<96xf32>, tensor<96xf32>) {axes = array<i64: 3>, epsilon = 1.0e-06 : f32} -> tensor<1x56x56x96xf32>
  %b = vision.layer_norm ins(%w, %c16 : tensor<16384x16xf32>, tensor<16xf32>) {axes = array<i64: 1>, epsilon = 1.0e-06 : f32} -> tensor<16384x16xf32>
  %y = vision.group_norm ins(%x, %c256, %c256 : tensor<2x256x56x56xf32>, tensor<256xf32>, tensor<256xf32>) {groups = 32 : i64, epsilon = 1.0e-05 : f32} -> tensor<2x256x56x56xf32>
  %z = vision.group_norm ins(%g, %c6, %c6 : tensor<2x6x2x2xf32>, tensor<6xf32>, tensor<6xf32>) {groups = 2 : i64, epsilon = 1.0e-05 : f32} -> tensor<2x6x2x2xf32>
  func.return %a, %b, %y, %z : tensor<1x56x56x96xf32>, tensor<16384x16xf32>, tensor<2x256x56x56xf32>, tensor<2x6x2x2xf32>
}
