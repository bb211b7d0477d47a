// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// Max pool with padding: a window wholly inside the input runs a plain loop; at the borders
// out-of-range taps are masked, never loaded out of bounds. NaN taps are skipped (maxnumf,
// from NaN: its identity), as onnxruntime skips them.
// CHECK-LABEL: func.func @max
// CHECK:      "scf.parallel"
// CHECK:        %[[NEG:.*]] = arith.constant 0x7fc00000 : f32
// CHECK:        %[[IN:.*]] = scf.if %{{.*}} -> (f32) {
// CHECK:          scf.for {{.*}} iter_args(%{{.*}} = %[[NEG]]) -> (f32) {
// CHECK:            scf.for
// CHECK-NEXT:         arith.addi
// CHECK-NEXT:         %[[V:.*]] = memref.load %x
// CHECK-NEXT:         arith.maxnumf %{{.*}}, %[[V]] : f32
// CHECK-NEXT:         scf.yield
// CHECK:        } else {
// CHECK:          scf.for {{.*}} iter_args(%{{.*}} = %[[NEG]]) -> (f32) {
// CHECK:            scf.for
// CHECK:              %[[W:.*]] = memref.load %x
// CHECK-NEXT:         %[[M:.*]] = arith.maxnumf %{{.*}}, %[[W]] : f32
// CHECK-NEXT:         arith.select %{{.*}}, %[[M]], %{{.*}} : f32
// CHECK:            } {vision.unroll = 0 : i64}
// CHECK:        memref.store %[[IN]], %out
// CHECK:      }) {kernel_name = "pool2d_pool1", workgroup_size = 64 : i64, onnx_node = "pool1"}
func.func @max(%x: memref<1x2x5x5xf32>, %out: memref<1x2x3x3xf32>) {
  vision.pool2d ins(%x : memref<1x2x5x5xf32>) outs(%out : memref<1x2x3x3xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "pool1", schedule = #vision.schedule<{wg = 64 : i64, unroll_win = 0 : i64}>}
  func.return
}

// Average pool without padding: the divisor is the static window size, no masks at all.
// CHECK-LABEL: func.func @avg
// CHECK-NOT:    arith.select
// CHECK:        %[[S:.*]] = arith.constant 4.000000e+00 : f32
// CHECK-NOT:    arith.select
// CHECK:        arith.divf %{{.*}}, %[[S]] : f32
// CHECK:      }) {kernel_name = "pool2d_avg", workgroup_size = 32 : i64{{.*}}}
func.func @avg(%x: memref<1x2x4x4xf32>, %out: memref<1x2x2x2xf32>) {
  vision.pool2d ins(%x : memref<1x2x4x4xf32>) outs(%out : memref<1x2x2x2xf32>) {kind = "avg", kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "avg", schedule = #vision.schedule<{wg = 32 : i64}>}
  func.return
}

// Average pool with padding excluded from the count: at the borders the count is carried
// with the sum.
// CHECK-LABEL: func.func @avg_pad
// CHECK:        } else {
// CHECK:        scf.for {{.*}} -> (f32, f32) {
// CHECK:        arith.divf
// CHECK:      }) {kernel_name = "pool2d_avg_pad", workgroup_size = 8 : i64{{.*}}}
func.func @avg_pad(%x: memref<1x1x4xf32>, %out: memref<1x1x3xf32>) {
  vision.pool2d ins(%x : memref<1x1x4xf32>) outs(%out : memref<1x1x3xf32>) {kind = "avg", kernel = array<i64: 3>, strides = array<i64: 2>, pads = array<i64: 1, 1>, dilations = array<i64: 1>, ceil_mode = 1 : i64, count_include_pad = 0 : i64, onnx_node = "avg_pad", schedule = #vision.schedule<{wg = 8 : i64}>}
  func.return
}

// Global average pool: one thread per (n, c), its plane read as one flat row (a reshape view).
// CHECK-LABEL: func.func @global
// CHECK:      %[[PLANE:.*]] = vision.reshape ins(%x : memref<2x3x4x5xf32>) {onnx_node = "gap:plane", onnx_op = "Reshape"} -> memref<2x3x20xf32>
// CHECK:      "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
// CHECK:        scf.for
// CHECK:          memref.load %[[PLANE]]
// CHECK:        arith.divf
// CHECK:        memref.store %{{.*}}, %out[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<2x3x1x1xf32>
// CHECK:      }) {kernel_name = "global_pool_gap", workgroup_size = 8 : i64{{.*}}}
func.func @global(%x: memref<2x3x4x5xf32>, %out: memref<2x3x1x1xf32>) {
  vision.global_pool ins(%x : memref<2x3x4x5xf32>) outs(%out : memref<2x3x1x1xf32>) {kind = "avg", onnx_node = "gap", schedule = #vision.schedule<{wg = 8 : i64}>}
  func.return
}

// partials = 4 (CPUs): four independent max chains over elements 4j..4j+3 (5 steps of the 20),
// met pairwise, then with the tail's chain (empty here: 20 = 5 x 4, so just the identity).
// CHECK-LABEL: func.func @global_partials
// CHECK:      scf.for %{{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32) {
// CHECK-COUNT-4: arith.maxnumf
// CHECK:      scf.yield
// CHECK:      arith.maxnumf
// CHECK-NEXT: arith.maxnumf
// CHECK-NEXT: arith.maxnumf
// CHECK-NEXT: arith.maxnumf
// CHECK-NEXT: memref.store
func.func @global_partials(%x: memref<1x2x4x5xf32>, %out: memref<1x2x1x1xf32>) {
  vision.global_pool ins(%x : memref<1x2x4x5xf32>) outs(%out : memref<1x2x1x1xf32>) {kind = "max", onnx_node = "gmp", schedule = #vision.schedule<{partials = 4 : i64, wg = 2 : i64}>}
  func.return
}

// vec = 4 on a padded stride-1 max pool: interior threads read each window row as one vector
// load, border threads mask lane by lane; 7 columns make 2 groups, the second shifted to
// columns 3..6 and storing lanes 1..3 only.
// CHECK-LABEL: func.func @vec
// CHECK:       "scf.parallel"({{.*}}) <{operandSegmentSizes = array<i32: 3, 3, 3, 0>}> ({
// CHECK:         %[[V:.*]] = scf.if %{{.*}} -> (vector<4xf32>) {
// CHECK:           vector.load %x
// CHECK:           arith.maxnumf %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK:         } else {
// CHECK-COUNT-4:   arith.select
// CHECK:           arith.maxnumf %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK:         scf.if
// CHECK-NEXT:      vector.extract %[[V]][1]
// CHECK-NEXT:      memref.store
// CHECK-NEXT:      vector.extract %[[V]][2]
// CHECK-NEXT:      memref.store
// CHECK-NEXT:      vector.extract %[[V]][3]
// CHECK-NEXT:      memref.store
// CHECK-NEXT:    } else {
// CHECK-NEXT:      vector.store %[[V]], %out
// CHECK:       }) {kernel_name = "pool2d_pv", workgroup_size = 8 : i64{{.*}}}
func.func @vec(%x: memref<1x2x7x7xf32>, %out: memref<1x2x7x7xf32>) {
  vision.pool2d ins(%x : memref<1x2x7x7xf32>) outs(%out : memref<1x2x7x7xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "pv", schedule = #vision.schedule<{wg = 8 : i64, vec = 4 : i64}>}
  func.return
}

// vec = 4 on a stride-2 max pool: a thread reads each window row's span of 2*3+3 = 9
// columns once (two vectors of 4 and a scalar), reduces the rows elementwise, then picks
// each lane's columns (2q, 2q+1, 2q+2) out of the span: no strided gathers per tap.
// CHECK-LABEL: func.func @vec_stride2
// CHECK:         %[[NEG:.*]] = arith.constant 0x7fc00000 : f32
// CHECK:         %[[NEGV:.*]] = vector.broadcast %[[NEG]] : f32 to vector<4xf32>
// CHECK:         %[[A:.*]], %[[B:.*]], %[[E:.*]] = scf.for {{.*}} iter_args(%[[CA:.*]] = %[[NEGV]], %[[CB:.*]] = %[[NEGV]], %[[CE:.*]] = %[[NEG]]) -> (vector<4xf32>, vector<4xf32>, f32) {
// CHECK-COUNT-9: memref.load %x
// CHECK-NOT:     memref.load
// CHECK:           %[[RA:.*]] = arith.maxnumf %[[CA]], %{{.*}} : vector<4xf32>
// CHECK-NEXT:      %[[RB:.*]] = arith.maxnumf %[[CB]], %{{.*}} : vector<4xf32>
// CHECK-NEXT:      %[[RE:.*]] = arith.maxnumf %[[CE]], %{{.*}} : f32
// CHECK-NEXT:      scf.yield %[[RA]], %[[RB]], %[[RE]]
// CHECK:         %[[A0:.*]] = vector.extract %[[A]][0]
// CHECK-NEXT:    %[[A1:.*]] = vector.extract %[[A]][1]
// CHECK-NEXT:    %[[A2:.*]] = vector.extract %[[A]][2]
// CHECK-NEXT:    %[[A3:.*]] = vector.extract %[[A]][3]
// CHECK-NEXT:    %[[B0:.*]] = vector.extract %[[B]][0]
// CHECK-NEXT:    %[[B1:.*]] = vector.extract %[[B]][1]
// CHECK-NEXT:    %[[B2:.*]] = vector.extract %[[B]][2]
// CHECK-NEXT:    %[[B3:.*]] = vector.extract %[[B]][3]
// CHECK-NEXT:    %[[T0:.*]] = vector.broadcast %[[A0]]
// CHECK-NEXT:    vector.insert %[[A2]], %[[T0]] [1]
// CHECK-NEXT:    vector.insert %[[B0]], %{{.*}} [2]
// CHECK-NEXT:    %[[TAP0:.*]] = vector.insert %[[B2]], %{{.*}} [3]
// CHECK-NEXT:    %[[T1:.*]] = vector.broadcast %[[A1]]
// CHECK-NEXT:    vector.insert %[[A3]], %[[T1]] [1]
// CHECK-NEXT:    vector.insert %[[B1]], %{{.*}} [2]
// CHECK-NEXT:    %[[TAP1:.*]] = vector.insert %[[B3]], %{{.*}} [3]
// CHECK-NEXT:    %[[T2:.*]] = vector.broadcast %[[A2]]
// CHECK-NEXT:    vector.insert %[[B0]], %[[T2]] [1]
// CHECK-NEXT:    vector.insert %[[B2]], %{{.*}} [2]
// CHECK-NEXT:    %[[TAP2:.*]] = vector.insert %[[E]], %{{.*}} [3]
// CHECK-NEXT:    %[[M:.*]] = arith.maxnumf %[[TAP0]], %[[TAP1]] : vector<4xf32>
// CHECK-NEXT:    %[[V:.*]] = arith.maxnumf %[[M]], %[[TAP2]] : vector<4xf32>
// CHECK:         vector.store %[[V]], %out
// CHECK:       }) {kernel_name = "pool2d_ps2", workgroup_size = 8 : i64{{.*}}}
func.func @vec_stride2(%x: memref<1x2x7x23xf32>, %out: memref<1x2x3x11xf32>) {
  vision.pool2d ins(%x : memref<1x2x7x23xf32>) outs(%out : memref<1x2x3x11xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "ps2", schedule = #vision.schedule<{wg = 8 : i64, vec = 4 : i64}>}
  func.return
}

// With padding, only interior threads take the span path; border threads still gather and
// mask lane by lane. Windows with gaps between them (stride 3 > kernel 2) always gather.
// CHECK-LABEL: func.func @vec_stride2_pad
// CHECK:         scf.if %{{.*}} -> (vector<4xf32>) {
// CHECK:           scf.for {{.*}} -> (vector<4xf32>, vector<4xf32>, f32) {
// CHECK:         } else {
// CHECK:           scf.for {{.*}} -> (vector<4xf32>) {
// CHECK:             arith.select
// CHECK-LABEL: func.func @vec_gaps
// CHECK-NOT:     -> (vector<4xf32>, vector<4xf32>
// CHECK:         scf.for {{.*}} -> (vector<4xf32>) {
// CHECK:       }) {kernel_name = "pool2d_pg", workgroup_size = 8 : i64{{.*}}}
func.func @vec_stride2_pad(%x: memref<1x2x7x23xf32>, %out: memref<1x2x4x12xf32>) {
  vision.pool2d ins(%x : memref<1x2x7x23xf32>) outs(%out : memref<1x2x4x12xf32>) {kind = "max", kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "pp", schedule = #vision.schedule<{wg = 8 : i64, vec = 4 : i64}>}
  func.return
}
func.func @vec_gaps(%x: memref<1x2x6x24xf32>, %out: memref<1x2x2x8xf32>) {
  vision.pool2d ins(%x : memref<1x2x6x24xf32>) outs(%out : memref<1x2x2x8xf32>) {kind = "max", kernel = array<i64: 2, 2>, strides = array<i64: 3, 3>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = 0 : i64, count_include_pad = 0 : i64, onnx_node = "pg", schedule = #vision.schedule<{wg = 8 : i64, vec = 4 : i64}>}
  func.return
}
