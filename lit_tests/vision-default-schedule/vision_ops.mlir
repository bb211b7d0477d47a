// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu}' | filecheck %s
// RUN: visc-opt %s -p 'vision-default-schedule{device_type=gpu max_workgroup_size=64}' | filecheck %s --check-prefix=WG64

// Cooperative ops get a work-group of one thread per comparator (sort, top-k, NMS) or per
// 4 elements (scan), a power of two up to the maximum, and sort in local memory when a row
// fits the portable 32 KiB; a 5000-element row sorts in global scratch memory instead, in
// blocks of 4096 that do fit. Flat ops (argmax, roi_align) read only `wg`.

// CHECK: vision.topk {{.*}}schedule = #vision.schedule<{local = 1 : i64, wg = 128 : i64}>
// CHECK: vision.topk {{.*}}schedule = #vision.schedule<{block = 4096 : i64, local = 0 : i64, wg = 256 : i64}>
// CHECK: vision.nms {{.*}}schedule = #vision.schedule<{local = 1 : i64, wg = 256 : i64}>
// CHECK: vision.scan {{.*}}schedule = #vision.schedule<{wg = 64 : i64}>
// CHECK: vision.argmax {{.*}}schedule = #vision.schedule<{wg = 2 : i64}>
// CHECK: vision.roi_align {{.*}}schedule = #vision.schedule<{wg = 32 : i64}>
// WG64: vision.topk {{.*}}schedule = #vision.schedule<{local = 1 : i64, wg = 64 : i64}>
// WG64: vision.nms {{.*}}schedule = #vision.schedule<{local = 1 : i64, wg = 64 : i64}>
func.func @main(%x: tensor<2x200xf32>, %big: tensor<5000xf32>, %b: tensor<1x1000x4xf32>, %s: tensor<1x3x1000xf32>, %f: tensor<1x3x8x8xf32>, %r: tensor<3x4xf32>, %ri: tensor<3xi64>) -> (tensor<2x10xf32>, tensor<10xf32>, tensor<300x3xi64>, tensor<2x200xf32>, tensor<2xi64>, tensor<3x3x2x2xf32>) {
  %v, %i = vision.topk ins(%x : tensor<2x200xf32>) {axis = 1 : i64, k = 10 : i64, largest = 1 : i64} -> tensor<2x10xf32>, tensor<2x10xi64>
  %bv, %bi = vision.topk ins(%big : tensor<5000xf32>) {axis = 0 : i64, k = 10 : i64, largest = 1 : i64} -> tensor<10xf32>, tensor<10xi64>
  %sel, %cnt = vision.nms ins(%b, %s : tensor<1x1000x4xf32>, tensor<1x3x1000xf32>) {center_point_box = 0 : i64, max_output_boxes_per_class = 100 : i64, iou_threshold = 5.000000e-01 : f32} -> tensor<300x3xi64>, tensor<1xi64>
  %cs = vision.scan ins(%x : tensor<2x200xf32>) {axis = 1 : i64} -> tensor<2x200xf32>
  %am = vision.argmax ins(%x : tensor<2x200xf32>) {axis = 1 : i64, select_last_index = 0 : i64} -> tensor<2xi64>
  %ra = vision.roi_align ins(%f, %r, %ri : tensor<1x3x8x8xf32>, tensor<3x4xf32>, tensor<3xi64>) {mode = "avg", coord_mode = "half_pixel", sampling_ratio = 0 : i64, spatial_scale = 1.000000e+00 : f32} -> tensor<3x3x2x2xf32>
  func.return %v, %bv, %sel, %cs, %am, %ra : tensor<2x10xf32>, tensor<10xf32>, tensor<300x3xi64>, tensor<2x200xf32>, tensor<2xi64>, tensor<3x3x2x2xf32>
}
