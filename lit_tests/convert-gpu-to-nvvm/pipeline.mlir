// RUN: visc-opt %s -p convert-scf-to-cf,convert-math-to-llvm,convert-arith-to-llvm,convert-vector-to-llvm,convert-memref-to-llvm,convert-cf-to-llvm,convert-gpu-to-nvvm,reconcile-unrealized-casts | filecheck %s
// RUN: visc-opt %s -p convert-scf-to-cf,convert-math-to-llvm,convert-arith-to-llvm,convert-vector-to-llvm,convert-memref-to-llvm,convert-cf-to-llvm,convert-gpu-to-nvvm,reconcile-unrealized-casts | visc-opt | filecheck %s

// The whole NVVM pipeline on a stage-5 kernel (a guarded sigmoid): only llvm ops remain in
// the kernel module, no bridging casts; the host function is untouched.

// CHECK:      "gpu.module"() <{sym_name = "kernels"}> ({
// CHECK-NEXT:   llvm.func @__nv_expf(f32) -> f32
// CHECK-NEXT:   llvm.func @sigmoid(%x: !llvm.ptr {llvm.noalias}, %y: !llvm.ptr {llvm.noalias}) attributes {nvvm.kernel, nvvm.reqntid = array<i32: 32, 1, 1>} {
// CHECK:          llvm.cond_br %inside, ^[[IN:.*]], ^[[OUT:.*]]
// CHECK:        ^[[IN]]:
// CHECK:          %{{.*}} = llvm.call @__nv_expf(%{{.*}}) : (f32) -> f32
// CHECK:          llvm.store
// CHECK:          llvm.br ^[[OUT]]
// CHECK:        ^[[OUT]]:
// CHECK-NEXT:     llvm.return
// CHECK-NEXT:   }
// CHECK-NEXT: }) : () -> ()
// CHECK-NOT:  unrealized_conversion_cast
// CHECK:      func.func @main
// CHECK-NEXT:   %c1 = arith.constant 1 : index
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<40xf32>, memref<40xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<40xf32>, %y: memref<40xf32>):
      %bid = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %wg = arith.constant 32 : index
      %base = arith.muli %bid, %wg : index
      %flat = arith.addi %base, %tid : index
      %total = arith.constant 40 : index
      %inside = arith.cmpi ult, %flat, %total : index
      scf.if %inside {
        %v = memref.load %x[%flat] : memref<40xf32>
        %n = arith.negf %v : f32
        %e = math.exp %n : f32
        %one = arith.constant 1.0 : f32
        %d = arith.addf %one, %e : f32
        %s = arith.divf %one, %d : f32
        memref.store %s, %y[%flat] : memref<40xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "sigmoid", gpu.known_block_size = array<i32: 32, 1, 1>} : () -> ()
  }) : () -> ()
  func.func @main(%x: memref<40xf32>, %out0: memref<40xf32>) attributes {vision.num_inputs = 1 : i64} {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c32 = arith.constant 32 : index
    "gpu.launch_func"(%c2, %c1, %c1, %c32, %c1, %c1, %x, %out0) <{kernel = @kernels::@sigmoid, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> {onnx_node = "sig"} : (index, index, index, index, index, index, memref<40xf32>, memref<40xf32>) -> ()
    func.return
  }
}
