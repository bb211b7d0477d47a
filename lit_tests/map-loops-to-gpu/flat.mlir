// RUN: visc-opt %s -p map-loops-to-gpu | filecheck %s
// RUN: visc-opt %s -p map-loops-to-gpu | visc-opt | filecheck %s

// A 2x3 space on work-groups of 4: 2 blocks, the tail is guarded by `flat < 6`.
// Kernel arguments are the memrefs in first-use order (the weight before the buffer that is
// only stored to); host constants the loop used are gone, the launch sizes are new ones.

// CHECK:      builtin.module attributes {gpu.container_module} {
// CHECK-NEXT:   "gpu.module"() <{sym_name = "kernels"}> ({
// CHECK-NEXT:     "gpu.func"() <{function_type = (memref<2x3xf32>, memref<3xf32>, memref<2x3xf32>) -> (), kernel}> ({
// CHECK-NEXT:     ^bb0(%x: memref<2x3xf32>, %w: memref<3xf32>, %t0: memref<2x3xf32>):
// CHECK-NEXT:       %bid = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
// CHECK-NEXT:       %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
// CHECK-NEXT:       %wg = arith.constant 4 : index
// CHECK-NEXT:       %[[BASE:.*]] = arith.muli %bid, %wg : index
// CHECK-NEXT:       %flat = arith.addi %[[BASE]], %tid : index
// CHECK-NEXT:       %total = arith.constant 6 : index
// CHECK-NEXT:       %inside = arith.cmpi ult, %flat, %total : index
// CHECK-NEXT:       scf.if %inside {
// CHECK-NEXT:         %c3 = arith.constant 3 : index
// CHECK-NEXT:         %j = arith.remui %flat, %c3 : index
// CHECK-NEXT:         %i = arith.divui %flat, %c3 : index
// CHECK-NEXT:         %a = memref.load %x[%i, %j] : memref<2x3xf32>
// CHECK-NEXT:         %b = memref.load %w[%j] : memref<3xf32>
// CHECK-NEXT:         %s = arith.addf %a, %b : f32
// CHECK-NEXT:         memref.store %s, %t0[%i, %j] : memref<2x3xf32>
// CHECK-NEXT:       }
// CHECK-NEXT:       "gpu.return"() : () -> ()
// CHECK-NEXT:     }) {sym_name = "add_bias", gpu.known_block_size = array<i32: 4, 1, 1>} : () -> ()
// CHECK:          "gpu.func"() <{function_type = (memref<2x3xf32>, memref<2x3xf32>) -> (), kernel}>
// CHECK:            %flat = arith.addi
// CHECK-NOT:        arith.cmpi
// CHECK:            %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:          }) {sym_name = "relu", gpu.known_block_size = array<i32: 3, 1, 1>} : () -> ()
// CHECK:        func.func @main(%x: memref<2x3xf32>, %out0: memref<2x3xf32>)
// CHECK-NEXT:     %w = vision.weight @w : memref<3xf32>
// CHECK-NEXT:     %t0 = vision.buffer offset 0 : memref<2x3xf32>
// CHECK-NEXT:     %c1 = arith.constant 1 : index
// CHECK-NEXT:     %c2 = arith.constant 2 : index
// CHECK-NEXT:     %c4 = arith.constant 4 : index
// CHECK-NEXT:     "gpu.launch_func"(%c2, %c1, %c1, %c4, %c1, %c1, %x, %w, %t0) <{kernel = @kernels::@add_bias, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 0>}> {onnx_node = "add"}
// CHECK-NEXT:     %c3 = arith.constant 3 : index
// CHECK-NEXT:     "gpu.launch_func"(%c2, %c1, %c1, %c3, %c1, %c1, %t0, %out0) <{kernel = @kernels::@relu
// CHECK-NEXT:     func.return
func.func @main(%x: memref<2x3xf32>, %out0: memref<2x3xf32>) attributes {vision.arena_size = 1024 : i64, vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %w = vision.weight @w : memref<3xf32>
  %t0 = vision.buffer offset 0 : memref<2x3xf32>
  "scf.parallel"(%c0, %c0, %c2, %c3, %c1, %c1) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %x[%i, %j] : memref<2x3xf32>
    %b = memref.load %w[%j] : memref<3xf32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %t0[%i, %j] : memref<2x3xf32>
    scf.reduce
  }) {kernel_name = "add_bias", workgroup_size = 4 : i64, onnx_node = "add"} : (index, index, index, index, index, index) -> ()
  "scf.parallel"(%c0, %c0, %c2, %c3, %c1, %c1) <{operandSegmentSizes = array<i32: 2, 2, 2, 0>}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %t0[%i, %j] : memref<2x3xf32>
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %a, %z : f32
    memref.store %r, %out0[%i, %j] : memref<2x3xf32>
    scf.reduce
  }) {kernel_name = "relu", workgroup_size = 3 : i64} : (index, index, index, index, index, index) -> ()
  func.return
}
