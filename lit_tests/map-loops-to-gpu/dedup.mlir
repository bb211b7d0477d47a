// RUN: visc-opt %s -p map-loops-to-gpu | filecheck %s

// Three loops: the first two differ only in names and in the buffers they touch, so one
// kernel serves both launches; the third has another work-group size and is a new kernel,
// whose name (taken) gets a suffix. Names that are not C identifiers are sanitized.

// CHECK:      "gpu.func"()
// CHECK:      }) {sym_name = "square", gpu.known_block_size = array<i32: 8, 1, 1>}
// CHECK-NEXT: "gpu.func"()
// CHECK:      }) {sym_name = "square_1", gpu.known_block_size = array<i32: 4, 1, 1>}
// CHECK-NEXT: "gpu.func"()
// CHECK:      }) {sym_name = "k_2nd_node_x", gpu.known_block_size = array<i32: 4, 1, 1>}
// CHECK-NOT:  "gpu.func"
// CHECK:      "gpu.launch_func"(%{{.*}}, %x, %t0) <{kernel = @kernels::@square,
// CHECK-SAME: {onnx_node = "a"}
// CHECK:      "gpu.launch_func"(%{{.*}}, %t0, %out0) <{kernel = @kernels::@square,
// CHECK-SAME: {onnx_node = "b"}
// CHECK:      "gpu.launch_func"(%{{.*}}, %t0, %out0) <{kernel = @kernels::@square_1,
// CHECK:      "gpu.launch_func"(%{{.*}}, %t0, %out0) <{kernel = @kernels::@k_2nd_node_x,
func.func @main(%x: memref<8xf32>, %out0: memref<8xf32>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %t0 = vision.buffer offset 0 : memref<8xf32>
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %a = memref.load %x[%i] : memref<8xf32>
    %s = arith.mulf %a, %a : f32
    memref.store %s, %t0[%i] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "square", workgroup_size = 8 : i64, onnx_node = "a"} : (index, index, index) -> ()
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%k: index):
    %v = memref.load %t0[%k] : memref<8xf32>
    %m = arith.mulf %v, %v : f32
    memref.store %m, %out0[%k] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "other_name", workgroup_size = 8 : i64, onnx_node = "b"} : (index, index, index) -> ()
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%k: index):
    %v = memref.load %t0[%k] : memref<8xf32>
    %m = arith.mulf %v, %v : f32
    memref.store %m, %out0[%k] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "square", workgroup_size = 4 : i64} : (index, index, index) -> ()
  "scf.parallel"(%c0, %c8, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%k: index):
    %v = memref.load %t0[%k] : memref<8xf32>
    %m = arith.addf %v, %v : f32
    memref.store %m, %out0[%k] : memref<8xf32>
    scf.reduce
  }) {kernel_name = "2nd node.x", workgroup_size = 4 : i64} : (index, index, index) -> ()
  func.return
}
