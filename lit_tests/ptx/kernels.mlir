// RUN: visc-opt %s -t 'ptx{arch=sm_90}' | filecheck %s
// RUN: visc-opt %s -t 'ptx{arch=sm_80 ptx_version=8.0}' | filecheck %s --check-prefix=V80

// A stage-5 module goes to PTX directly (the target lowers a copy to the llvm dialect).
// Kernels are .entry functions with .reqntid; read-only global loads use the
// non-coherent path; expf comes from libdevice, linked and inlined (no .extern left);
// workgroup memory is a .shared array and gpu.barrier is bar.sync.

// CHECK:      .version 7.8
// CHECK-NEXT: .target sm_90
// CHECK-NEXT: .address_size 64
// CHECK-NOT:  .extern
// CHECK:      .visible .entry sigmoid(
// CHECK:      .reqntid 32, 1, 1
// CHECK:      ld.global.nc
// CHECK:      ex2.approx
// CHECK:      st.global
// CHECK:      .visible .entry reverse(
// CHECK:      .shared .align 16 .b8 __shared_reverse_0[128];
// CHECK:      st.shared
// CHECK:      bar.sync 0;
// CHECK:      ld.shared

// V80:      .version 8.0
// V80-NEXT: .target sm_80
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
    "gpu.func"() <{function_type = (memref<32xf32>, memref<32xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<32xf32>, %y: memref<32xf32>):
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tile = memref.alloca() : memref<32xf32, 3>
      %v = memref.load %x[%tid] : memref<32xf32>
      memref.store %v, %tile[%tid] : memref<32xf32, 3>
      "gpu.barrier"() : () -> ()
      %c31 = arith.constant 31 : index
      %r = arith.subi %c31, %tid : index
      %w = memref.load %tile[%r] : memref<32xf32, 3>
      memref.store %w, %y[%tid] : memref<32xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "reverse", gpu.known_block_size = array<i32: 32, 1, 1>} : () -> ()
  }) : () -> ()
  func.func @main(%x: memref<40xf32>, %out0: memref<40xf32>) attributes {vision.num_inputs = 1 : i64} {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c32 = arith.constant 32 : index
    "gpu.launch_func"(%c2, %c1, %c1, %c32, %c1, %c1, %x, %out0) <{kernel = @kernels::@sigmoid, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<40xf32>, memref<40xf32>) -> ()
    func.return
  }
}
