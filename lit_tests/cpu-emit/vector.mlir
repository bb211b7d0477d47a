// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// Vector loads and stores are element-aligned accesses at the linearized address; a
// broadcast is an insertelement and a zero-mask shufflevector; vector.fma is llvm.fma;
// lanes are read and written with extract/insertelement; a reduction combines the lanes in
// order and then the accumulator. Intrinsics are declared once, before the functions.

// CHECK:      declare <4 x float> @"llvm.fma.v4f32"(<4 x float>, <4 x float>, <4 x float>)
// CHECK-NEXT: declare float @"llvm.maximum.f32"(float, float)
// CHECK-EMPTY:
// CHECK-NEXT: define void @"cpu_vec"(ptr noalias %[[X:[A-Za-z0-9_.]+]], ptr noalias %[[Y:[A-Za-z0-9_.]+]], i32 %[[B:[A-Za-z0-9_.]+]], i32 %{{.+}}) {
// CHECK:        %[[O:[A-Za-z0-9_.]+]] = mul nsw i32 %[[B]], 4
// CHECK-NEXT:   %[[P:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[X]], i32 %[[O]]
// CHECK-NEXT:   %[[V:[A-Za-z0-9_.]+]] = load <4 x float>, ptr %[[P]], align 4
// CHECK-NEXT:   %[[S0:[A-Za-z0-9_.]+]] = insertelement <4 x float> undef, float 0x3FF8000000000000, i32 0
// CHECK-NEXT:   %[[S:[A-Za-z0-9_.]+]] = shufflevector <4 x float> %[[S0]], <4 x float> %[[S0]], <4 x i32> zeroinitializer
// CHECK-NEXT:   %[[F:[A-Za-z0-9_.]+]] = call <4 x float> @"llvm.fma.v4f32"(<4 x float> %[[V]], <4 x float> %[[S]], <4 x float> <float 0x3FF0000000000000, float 0x4000000000000000, float 0x4008000000000000, float 0x4010000000000000>)
// CHECK-NEXT:   %[[E:[A-Za-z0-9_.]+]] = extractelement <4 x float> %[[F]], i32 2
// CHECK-NEXT:   %[[I:[A-Za-z0-9_.]+]] = insertelement <4 x float> %[[F]], float %[[E]], i32 0
// CHECK-NEXT:   %[[L0:[A-Za-z0-9_.]+]] = extractelement <4 x float> %[[I]], i32 0
// CHECK-NEXT:   %[[L1:[A-Za-z0-9_.]+]] = extractelement <4 x float> %[[I]], i32 1
// CHECK-NEXT:   %[[L2:[A-Za-z0-9_.]+]] = extractelement <4 x float> %[[I]], i32 2
// CHECK-NEXT:   %[[L3:[A-Za-z0-9_.]+]] = extractelement <4 x float> %[[I]], i32 3
// CHECK-NEXT:   %[[A1:[A-Za-z0-9_.]+]] = fadd float %[[L0]], %[[L1]]
// CHECK-NEXT:   %[[A2:[A-Za-z0-9_.]+]] = fadd float %[[A1]], %[[L2]]
// CHECK-NEXT:   %[[A3:[A-Za-z0-9_.]+]] = fadd float %[[A2]], %[[L3]]
// CHECK-NEXT:   %[[A4:[A-Za-z0-9_.]+]] = fadd float %[[A3]], 0x3FE0000000000000
// CHECK:        %[[M1:[A-Za-z0-9_.]+]] = call float @"llvm.maximum.f32"(float %{{.+}}, float %{{.+}})
// CHECK-NEXT:   %[[M2:[A-Za-z0-9_.]+]] = call float @"llvm.maximum.f32"(float %[[M1]], float %{{.+}})
// CHECK-NEXT:   %[[M3:[A-Za-z0-9_.]+]] = call float @"llvm.maximum.f32"(float %[[M2]], float %{{.+}})
// CHECK-NEXT:   %[[Q:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[Y]], i32 4
// CHECK-NEXT:   store <4 x float> %[[I]], ptr %[[Q]], align 4
// CHECK-NEXT:   store float %[[A4]], ptr %[[Y]], align 4
// CHECK-NEXT:   %[[Q1:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[Y]], i32 1
// CHECK-NEXT:   store float %[[M3]], ptr %[[Q1]], align 4
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4x4xf32>, memref<8xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<4x4xf32>, %y: memref<8xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c4 = arith.constant 4 : index
      %k = arith.constant 1.500000e+00 : f32
      %half = arith.constant 5.000000e-01 : f32
      %ramp = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : vector<4xf32>
      %v = vector.load %x[%begin, %c0] : memref<4x4xf32>, vector<4xf32>
      %s = vector.broadcast %k : f32 to vector<4xf32>
      %f = vector.fma %v, %s, %ramp : vector<4xf32>
      %e = vector.extract %f[2] : f32 from vector<4xf32>
      %i = vector.insert %e, %f[0] : f32 into vector<4xf32>
      %sum = vector.reduction <add>, %i, %half : vector<4xf32> into f32
      %max = vector.reduction <maximumf>, %i : vector<4xf32> into f32
      vector.store %i, %y[%c4] : memref<8xf32>, vector<4xf32>
      memref.store %sum, %y[%c0] : memref<8xf32>
      memref.store %max, %y[%c1] : memref<8xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_vec"} : () -> ()
  }) : () -> ()
}
