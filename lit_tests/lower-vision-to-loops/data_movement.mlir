// RUN: visc-opt %s -p lower-vision-to-loops | filecheck %s

// CHECK-LABEL: func.func @concat
// CHECK:       "scf.parallel"
// CHECK:         memref.store %{{.*}}, %out[%{{.*}}, %{{.*}}] : memref<2x5xf32>
// CHECK:       }) {kernel_name = "concat_cat_0", workgroup_size = 4 : i64{{.*}}}
// CHECK:       "scf.parallel"
// CHECK:         %[[OFF:.*]] = arith.addi %{{.*}}, %{{.*}} : index
// CHECK:         memref.store %{{.*}}, %out[%{{.*}}, %[[OFF]]] : memref<2x5xf32>
// CHECK:       }) {kernel_name = "concat_cat_1", workgroup_size = 4 : i64{{.*}}}
func.func @concat(%a: memref<2x2xf32>, %b: memref<2x3xf32>, %out: memref<2x5xf32>) {
  vision.concat ins(%a, %b : memref<2x2xf32>, memref<2x3xf32>) outs(%out : memref<2x5xf32>) {axis = -1 : i64, onnx_node = "cat", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// CHECK-LABEL: func.func @split
// CHECK-COUNT-2: kernel_name = "split_sp_{{[01]}}"
func.func @split(%a: memref<5x2xi64>, %o0: memref<2x2xi64>, %o1: memref<3x2xi64>) {
  vision.split ins(%a : memref<5x2xi64>) outs(%o0, %o1 : memref<2x2xi64>, memref<3x2xi64>) {axis = 0 : i64, onnx_node = "sp", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// A negative step reads backwards: x[5 - 2 i].
// CHECK-LABEL: func.func @slice
// CHECK:       ^bb0(%[[I:.*]]: index):
// CHECK:         %[[M:.*]] = arith.muli %[[I]], %{{.*}} : index
// CHECK-NEXT:    %[[S:.*]] = arith.addi %[[M]], %{{.*}} : index
// CHECK-NEXT:    memref.load %x[%[[S]]] : memref<6xf32>
func.func @slice(%x: memref<6xf32>, %out: memref<3xf32>) {
  vision.slice ins(%x : memref<6xf32>) outs(%out : memref<3xf32>) {starts = array<i64: 5>, steps = array<i64: -2>, onnx_node = "sl", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Constant padding: masked load then select of the pad value; unpadded dims untouched.
// CHECK-LABEL: func.func @pad_constant
// CHECK:         %[[V:.*]] = memref.load %x
// CHECK-NEXT:    %[[R:.*]] = arith.select %{{.*}}, %[[V]], %{{.*}} : f32
// CHECK-NEXT:    memref.store %[[R]], %out
func.func @pad_constant(%x: memref<2x3xf32>, %out: memref<2x6xf32>) {
  vision.pad ins(%x : memref<2x3xf32>) outs(%out : memref<2x6xf32>) {pads = array<i64: 0, 1, 0, 2>, mode = "constant", value = 1.500000e+00 : f64, onnx_node = "pc", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Reflect padding: index folded into one period of 2 (n - 1), mirrored in its second half.
// CHECK-LABEL: func.func @pad_reflect
// CHECK:         arith.remsi
// CHECK:         arith.cmpi slt
// CHECK:         arith.select
// CHECK:         memref.load %x
func.func @pad_reflect(%x: memref<3xf32>, %out: memref<9xf32>) {
  vision.pad ins(%x : memref<3xf32>) outs(%out : memref<9xf32>) {pads = array<i64: 3, 3>, mode = "reflect", value = 0.000000e+00 : f64, onnx_node = "pr", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// CHECK-LABEL: func.func @transpose
// CHECK:       ^bb0(%[[I:.*]]: index, %[[J:.*]]: index, %[[K:.*]]: index):
// CHECK:         %[[V:.*]] = memref.load %x[%[[J]], %[[K]], %[[I]]] : memref<2x3x4xf32>
// CHECK-NEXT:    memref.store %[[V]], %out[%[[I]], %[[J]], %[[K]]] : memref<4x2x3xf32>
func.func @transpose(%x: memref<2x3x4xf32>, %out: memref<4x2x3xf32>) {
  vision.transpose ins(%x : memref<2x3x4xf32>) outs(%out : memref<4x2x3xf32>) {perm = array<i64: 2, 0, 1>, onnx_node = "tr", schedule = #vision.schedule<{wg = 8 : i64}>}
  func.return
}

// Gather: negative indices wrap; an index still outside [0, 5) sets the node's status word
// ([1, the index]) for the runtime to report, and the load reads a clamped row meanwhile.
// CHECK-LABEL: func.func @gather
// CHECK:         %[[S:.*]] = vision.status "index out of range: axis 0 has 5 entries (valid indices -5 to 4)" {onnx_node = "ga", onnx_op = "Gather"} : memref<2xi64>
// CHECK:         %[[RAW:.*]] = memref.load %idx
// CHECK-NEXT:    %[[I:.*]] = arith.index_cast %[[RAW]] : i64 to index
// CHECK-NEXT:    arith.cmpi slt, %[[I]]
// CHECK:         %[[W:.*]] = arith.select
// CHECK-NEXT:    %[[LO:.*]] = arith.cmpi slt, %[[W]]
// CHECK-NEXT:    %[[HI:.*]] = arith.cmpi sge, %[[W]]
// CHECK-NEXT:    %[[BAD:.*]] = arith.ori %[[LO]], %[[HI]] : i1
// CHECK-NEXT:    scf.if %[[BAD]] {
// CHECK-NEXT:      memref.store %{{.*}}, %[[S]][%{{.*}}] : memref<2xi64>
// CHECK-NEXT:      memref.store %[[RAW]], %[[S]][%{{.*}}] : memref<2xi64>
// CHECK-NEXT:    }
// CHECK:         arith.maxsi
// CHECK-NEXT:    arith.minsi
// CHECK:         memref.load %data
func.func @gather(%data: memref<5x3xf32>, %idx: memref<2x2xi64>, %out: memref<2x2x3xf32>) {
  vision.gather ins(%data, %idx : memref<5x3xf32>, memref<2x2xi64>) outs(%out : memref<2x2x3xf32>) {axis = 0 : i64, onnx_node = "ga", onnx_op = "Gather", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// Constant indices were checked at import: no status word.
// CHECK-LABEL: func.func @gather_const
// CHECK-NOT:     vision.status
// CHECK-NOT:     scf.if
// CHECK:         func.return
func.func @gather_const(%data: memref<5x3xf32>, %out: memref<2x3xf32>) {
  %idx = vision.weight @idx : memref<2xi64>
  vision.gather ins(%data, %idx : memref<5x3xf32>, memref<2xi64>) outs(%out : memref<2x3xf32>) {axis = 0 : i64, onnx_node = "gc", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// GatherElements: one thread per output element; the axis coordinate comes from indices,
// checked like Gather's.
// CHECK-LABEL: func.func @gather_elements
// CHECK:         %[[S:.*]] = vision.status "index out of range: axis 0 has 4 entries (valid indices -4 to 3)" {onnx_node = "ge", onnx_op = "GatherElements"}
// CHECK:         ^bb0(%[[I:.*]]: index, %[[J:.*]]: index):
// CHECK:           %[[RAW:.*]] = memref.load %idx[%[[I]], %[[J]]] : memref<2x3xi64>
// CHECK:           scf.if
// CHECK-NEXT:        memref.store %{{.*}}, %[[S]][%{{.*}}]
// CHECK-NEXT:        memref.store %[[RAW]], %[[S]][%{{.*}}]
// CHECK:           %[[P:.*]] = arith.minsi
// CHECK-NEXT:      %[[V:.*]] = memref.load %data[%[[P]], %[[J]]] : memref<4x3xf32>
// CHECK-NEXT:      memref.store %[[V]], %out[%[[I]], %[[J]]]
func.func @gather_elements(%data: memref<4x3xf32>, %idx: memref<2x3xi64>, %out: memref<2x3xf32>) {
  vision.gather_elements ins(%data, %idx : memref<4x3xf32>, memref<2x3xi64>) outs(%out : memref<2x3xf32>) {axis = 0 : i64, onnx_node = "ge", onnx_op = "GatherElements", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// GatherND with batch_dims = 1: the batch coordinate is shared, the index tuple (one entry)
// picks the row of data's dim 1, the trailing coordinate runs over the slice.
// CHECK-LABEL: func.func @gather_nd
// CHECK:         vision.status "index out of range (valid indices axis 1: -4 to 3)"
// CHECK:         ^bb0(%[[B:.*]]: index, %[[M:.*]]: index, %[[C:.*]]: index):
// CHECK:           memref.load %idx[%[[B]], %[[M]], %{{.*}}] : memref<2x5x1xi64>
// CHECK:           %[[P:.*]] = arith.minsi
// CHECK-NEXT:      %[[V:.*]] = memref.load %data[%[[B]], %[[P]], %[[C]]] : memref<2x4x3xf32>
// CHECK-NEXT:      memref.store %[[V]], %out[%[[B]], %[[M]], %[[C]]]
func.func @gather_nd(%data: memref<2x4x3xf32>, %idx: memref<2x5x1xi64>, %out: memref<2x5x3xf32>) {
  vision.gather_nd ins(%data, %idx : memref<2x4x3xf32>, memref<2x5x1xi64>) outs(%out : memref<2x5x3xf32>) {batch_dims = 1 : i64, onnx_node = "gn", onnx_op = "GatherND", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}

// ScatterND (add): each output element starts from data and walks the index tuples in order,
// adding the update of every tuple that addresses its row: no atomics, repeats apply in order.
// CHECK-LABEL: func.func @scatter_nd
// CHECK:         vision.status "index out of range (valid indices axis 0: -4 to 3)"
// CHECK:         ^bb0(%[[R:.*]]: index, %[[C:.*]]: index):
// CHECK:           %[[D:.*]] = memref.load %data[%[[R]], %[[C]]]
// CHECK:           %[[ACC:.*]] = scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[CARRY:.*]] = %[[D]]) -> (f32) {
// CHECK:             memref.load %idx[%[[T]], %{{.*}}] : memref<2x1xi64>
// CHECK:             %[[P:.*]] = arith.minsi
// CHECK-NEXT:        %[[HIT:.*]] = arith.cmpi eq, %[[P]], %[[R]] : index
// CHECK-NEXT:        %[[U:.*]] = memref.load %upd[%[[T]], %[[C]]] : memref<2x3xf32>
// CHECK-NEXT:        %[[SUM:.*]] = arith.addf %[[CARRY]], %[[U]] : f32
// CHECK-NEXT:        %[[NEW:.*]] = arith.select %[[HIT]], %[[SUM]], %[[CARRY]] : f32
// CHECK-NEXT:        scf.yield %[[NEW]] : f32
// CHECK:           memref.store %[[ACC]], %out[%[[R]], %[[C]]]
func.func @scatter_nd(%data: memref<4x3xf32>, %idx: memref<2x1xi64>, %upd: memref<2x3xf32>, %out: memref<4x3xf32>) {
  vision.scatter_nd ins(%data, %idx, %upd : memref<4x3xf32>, memref<2x1xi64>, memref<2x3xf32>) outs(%out : memref<4x3xf32>) {reduction = "add", onnx_node = "sn", onnx_op = "ScatterND", schedule = #vision.schedule<{wg = 4 : i64}>}
  func.return
}
