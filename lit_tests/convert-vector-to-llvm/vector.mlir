// RUN: visc-opt %s -p convert-vector-to-llvm | filecheck %s
// RUN: visc-opt %s -p convert-vector-to-llvm | visc-opt | filecheck %s

// Broadcast: insertelement + zero-mask shuffle. A lane is read as a one-lane shuffle cast to
// the scalar (xDSL's llvm dialect has no extractelement). Reductions chain scalar ops.

// CHECK:      %[[U:.*]] = llvm.mlir.undef : vector<4xf32>
// CHECK-NEXT: %[[L0:.*]] = llvm.mlir.constant(0 : i32) : i32
// CHECK-NEXT: %[[I:.*]] = llvm.insertelement %x, %[[U]][%[[L0]] : i32] : vector<4xf32>
// CHECK-NEXT: %[[B:.*]] = llvm.shufflevector %[[I]], %[[I]] [0, 0, 0, 0] : vector<4xf32>
// CHECK-NEXT: %f = llvm.intr.fma(%[[B]], %[[B]], %[[B]]) : (vector<4xf32>, vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK-NEXT: %[[ONE:.*]] = llvm.shufflevector %f, %f [2] : vector<4xf32>
// CHECK-NEXT: %[[E:.*]] = llvm.bitcast %[[ONE]] : vector<1xf32> to f32
// CHECK-NEXT: %[[L3:.*]] = llvm.mlir.constant(3 : i32) : i32
// CHECK-NEXT: %[[V:.*]] = llvm.insertelement %[[E]], %f[%[[L3]] : i32] : vector<4xf32>
// CHECK-COUNT-4: llvm.shufflevector %[[V]], %[[V]]
// CHECK:      %[[M1:.*]] = llvm.call_intrinsic "llvm.maximum.f32"
// CHECK-NEXT: %[[M2:.*]] = llvm.call_intrinsic "llvm.maximum.f32"(%[[M1]],
// CHECK-NEXT: %{{.*}} = llvm.call_intrinsic "llvm.maximum.f32"(%[[M2]],
// CHECK-NOT:  vector.
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (f32) -> (), kernel}> ({
    ^bb0(%x: f32):
      %b = vector.broadcast %x : f32 to vector<4xf32>
      %f = vector.fma %b, %b, %b : vector<4xf32>
      %e = vector.extract %f[2] : f32 from vector<4xf32>
      %v = vector.insert %e, %f[3] : f32 into vector<4xf32>
      %r = vector.reduction <maximumf>, %v : vector<4xf32> into f32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
