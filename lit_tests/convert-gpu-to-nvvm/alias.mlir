// RUN: visc-opt %s -p convert-gpu-to-nvvm | filecheck %s

// `noalias` is dropped when a launch passes the buffer the kernel writes also as another
// argument (here through a vision.reshape view); read-only sharing keeps it.

// CHECK: llvm.func @inplace(%a: !llvm.ptr, %b: !llvm.ptr)
// CHECK: llvm.func @readers(%{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias})
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<4xf32>, memref<2x2xf32>) -> (), kernel}> ({
    ^bb0(%a: memref<4xf32>, %b: memref<2x2xf32>):
      %c0 = arith.constant 0 : index
      %v = memref.load %a[%c0] : memref<4xf32>
      memref.store %v, %b[%c0, %c0] : memref<2x2xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "inplace"} : () -> ()
    "gpu.func"() <{function_type = (memref<4xf32>, memref<4xf32>, memref<4xf32>) -> (), kernel}> ({
    ^bb0(%a: memref<4xf32>, %b: memref<4xf32>, %c: memref<4xf32>):
      %c0 = arith.constant 0 : index
      %v = memref.load %a[%c0] : memref<4xf32>
      %w = memref.load %b[%c0] : memref<4xf32>
      %s = arith.addf %v, %w : f32
      memref.store %s, %c[%c0] : memref<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "readers"} : () -> ()
  }) : () -> ()
  func.func @main(%x: memref<4xf32>, %out0: memref<4xf32>) {
    %c1 = arith.constant 1 : index
    %t = vision.buffer offset 0 : memref<4xf32>
    %view = vision.reshape ins(%t : memref<4xf32>) -> memref<2x2xf32>
    "gpu.launch_func"(%c1, %c1, %c1, %c1, %c1, %c1, %t, %view) <{kernel = @kernels::@inplace, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<4xf32>, memref<2x2xf32>) -> ()
    "gpu.launch_func"(%c1, %c1, %c1, %c1, %c1, %c1, %x, %x, %out0) <{kernel = @kernels::@readers, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 0>}> : (index, index, index, index, index, index, memref<4xf32>, memref<4xf32>, memref<4xf32>) -> ()
    func.return
  }
}
