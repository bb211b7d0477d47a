// RUN: visc-opt %s -p convert-gpu-to-nvvm | filecheck %s
// RUN: visc-opt %s -p convert-gpu-to-nvvm | visc-opt | filecheck %s

// A kernel becomes an llvm.func marked nvvm.kernel with its block size as nvvm.reqntid;
// memref arguments become noalias pointers (users not yet lowered see them through casts).
// Thread and block ids read PTX special registers (i32: the index type); gpu.barrier is
// bar.sync 0. The host function and its launches are unchanged.

// CHECK:      "gpu.module"() <{sym_name = "kernels"}> ({
// CHECK-NEXT:   llvm.func @scale(%in: !llvm.ptr {llvm.noalias}, %out: !llvm.ptr {llvm.noalias}) attributes {nvvm.kernel, nvvm.reqntid = array<i32: 64, 1, 1>} {
// CHECK-NEXT:     %[[OUT:.*]] = builtin.unrealized_conversion_cast %out : !llvm.ptr to memref<128xf32>
// CHECK-NEXT:     %[[IN:.*]] = builtin.unrealized_conversion_cast %in : !llvm.ptr to memref<128xf32>
// CHECK-NEXT:     %[[B:.*]] = llvm.call_intrinsic "llvm.nvvm.read.ptx.sreg.ctaid.x"() : () -> i32
// CHECK-NEXT:     %{{.*}} = builtin.unrealized_conversion_cast %[[B]] : i32 to index
// CHECK-NEXT:     %[[T:.*]] = llvm.call_intrinsic "llvm.nvvm.read.ptx.sreg.tid.x"() : () -> i32
// CHECK-NEXT:     %{{.*}} = builtin.unrealized_conversion_cast %[[T]] : i32 to index
// CHECK:          %v = memref.load %[[IN]][%flat] : memref<128xf32>
// CHECK-NEXT:     llvm.call_intrinsic "llvm.nvvm.barrier0"() : () -> ()
// CHECK-NEXT:     memref.store %v, %[[OUT]][%flat] : memref<128xf32>
// CHECK-NEXT:     llvm.return
// CHECK-NEXT:   }
// CHECK:      func.func @main(%in: memref<128xf32>, %out0: memref<128xf32>)
// CHECK:        "gpu.launch_func"(%c2, %c1, %c1, %c64, %c1, %c1, %in, %out0) <{kernel = @kernels::@scale
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<128xf32>, memref<128xf32>) -> (), kernel}> ({
    ^bb0(%in: memref<128xf32>, %out: memref<128xf32>):
      %bid = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %wg = arith.constant 64 : index
      %base = arith.muli %bid, %wg : index
      %flat = arith.addi %base, %tid : index
      %v = memref.load %in[%flat] : memref<128xf32>
      "gpu.barrier"() : () -> ()
      memref.store %v, %out[%flat] : memref<128xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "scale", gpu.known_block_size = array<i32: 64, 1, 1>} : () -> ()
  }) : () -> ()
  func.func @main(%in: memref<128xf32>, %out0: memref<128xf32>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    "gpu.launch_func"(%c2, %c1, %c1, %c64, %c1, %c1, %in, %out0) <{kernel = @kernels::@scale, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<128xf32>, memref<128xf32>) -> ()
    func.return
  }
}
