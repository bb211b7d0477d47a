// RUN: visc-opt %s -t 'ptx{arch=sm_90}' | filecheck %s

// Stage-5 kernels printed as LLVM IR by NVPTXEmitter: `inplace` writes a buffer its launch
// also passes as a view, so its pointers are not noalias and its load is a plain ld.global;
// `readers` keeps noalias (read-only data through ld.global.nc; the vector load aligned to
// one element only, so four scalar loads). gpu.global_id is ctaid * ntid + tid; rsqrt and powi come from libdevice, linked
// and inlined (no .extern); known_block_size becomes .reqntid.

// CHECK-NOT:  .extern
// CHECK:      .visible .entry inplace(
// CHECK-NOT:  ld.global.nc
// CHECK:      ld.global.b32
// CHECK:      st.global.b32
// CHECK:      .visible .entry readers(
// CHECK:      .reqntid 64, 2, 1
// CHECK-DAG:  mov.u32 {{.*}}%ctaid.x;
// CHECK-DAG:  mov.u32 {{.*}}%ntid.x;
// CHECK-DAG:  mov.u32 {{.*}}%tid.x;
// CHECK-COUNT-4: ld.global.nc.b32
// CHECK:      rsqrt.approx
// CHECK:      st.global
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xf32>, memref<2x2xf32>) -> (), kernel}> ({
    ^bb0(%a: memref<4xf32>, %b: memref<2x2xf32>):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %v = memref.load %a[%c1] : memref<4xf32>
      memref.store %v, %b[%c0, %c0] : memref<2x2xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "inplace"} : () -> ()
    "gpu.func"() <{function_type = (memref<512xf32>, memref<128xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<512xf32>, %y: memref<128xf32>):
      %i = "gpu.global_id"() <{dimension = #gpu<dim x>}> : () -> index
      %c4 = arith.constant 4 : index
      %n = arith.constant 3 : i32
      %at = arith.muli %i, %c4 : index
      %v = vector.load %x[%at] : memref<512xf32>, vector<4xf32>
      %s = vector.reduction <add>, %v : vector<4xf32> into f32
      %r = math.rsqrt %s : f32
      %p = math.fpowi %r, %n : f32, i32
      memref.store %p, %y[%i] : memref<128xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "readers", gpu.known_block_size = array<i32: 64, 2>} : () -> ()
  }) : () -> ()
  func.func @main(%x: memref<512xf32>, %out0: memref<128xf32>) {
    %c1 = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %c64 = arith.constant 64 : index
    %t = vision.buffer offset 0 : memref<4xf32>
    %view = vision.reshape ins(%t : memref<4xf32>) -> memref<2x2xf32>
    "gpu.launch_func"(%c1, %c1, %c1, %c1, %c1, %c1, %t, %view) <{kernel = @kernels::@inplace, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<4xf32>, memref<2x2xf32>) -> ()
    "gpu.launch_func"(%c2, %c1, %c1, %c64, %c2, %c1, %x, %out0) <{kernel = @kernels::@readers, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<512xf32>, memref<128xf32>) -> ()
    func.return
  }
}
