// RUN: visc-opt %s -p map-loops-to-gpu -t opencl | filecheck %s

// Fused multiply-adds print as one contractable expression (the device compiler fuses it),
// never as the fma() builtin, which PoCL runs in software.

// CHECK:      void axpy(
// CHECK:        float [[S:v[0-9]+]] = ([[A:v[0-9]+]] * [[B:v[0-9]+]] + [[C:v[0-9]+]]);
// CHECK:        float4 {{v[0-9]+}} = ({{v[0-9]+}} * {{v[0-9]+}} + {{v[0-9]+}});
// CHECK-NOT:    fma(
func.func @main(%x: memref<8xf32>, %y: memref<8xf32>) attributes {vision.num_inputs = 1 : i64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c4 = arith.constant 4 : index
  "scf.parallel"(%c0, %c2, %c1) <{operandSegmentSizes = array<i32: 1, 1, 1, 0>}> ({
  ^bb0(%i: index):
    %j = arith.muli %i, %c4 : index
    %a = memref.load %x[%j] : memref<8xf32>
    %s = math.fma %a, %a, %a : f32
    %v = vector.load %x[%j] : memref<8xf32>, vector<4xf32>
    %b = vector.broadcast %s : f32 to vector<4xf32>
    %r = vector.fma %v, %b, %v : vector<4xf32>
    vector.store %r, %y[%j] : memref<8xf32>, vector<4xf32>
    scf.reduce
  }) {kernel_name = "axpy", workgroup_size = 2 : i64} : (index, index, index) -> ()
  func.return
}
