// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// Math: what every LLVM target lowers well is an intrinsic (sqrt, fabs, floor, fma, powi),
// the rest calls libm (`exp` for f64, `tanhf` for f32); f16 runs in f32 and rounds back;
// vector operands call once per lane; rsqrt is 1 / sqrt. f32 exp (scalar or vector) is
// inline arithmetic (llvm_vector_math): range reduction by rint(x log2 e), a polynomial,
// and 2^n as two exponent-field powers; beyond the range +inf / 0, NaN kept by the selects. maximumf/minimumf propagate NaN
// (llvm.maximum), maxnumf does not (llvm.maxnum). Float -> int
// saturates; uitofp of i32 goes through a zero-extended i64. Declarations come first.

// CHECK-NOT:  @"expf"
// CHECK-DAG:  declare float @"llvm.rint.f32"(float)
// CHECK-DAG:  declare <2 x float> @"llvm.rint.v2f32"(<2 x float>)
// CHECK-DAG:  declare double @"exp"(double)
// CHECK-DAG:  declare float @"tanhf"(float)
// CHECK-DAG:  declare float @"powf"(float, float)
// CHECK-DAG:  declare float @"llvm.sqrt.f32"(float)
// CHECK-DAG:  declare half @"llvm.fabs.f16"(half)
// CHECK-DAG:  declare float @"llvm.powi.f32.i32"(float, i32)
// CHECK-DAG:  declare float @"llvm.maximum.f32"(float, float)
// CHECK-DAG:  declare float @"llvm.maxnum.f32"(float, float)
// CHECK-DAG:  declare float @"llvm.minimum.f32"(float, float)
// CHECK-DAG:  declare i32 @"llvm.fptosi.sat.i32.f32"(float)
// CHECK-DAG:  declare i8 @"llvm.fptoui.sat.i8.f32"(float)
// CHECK-DAG:  declare i32 @"llvm.smax.i32"(i32, i32)
// CHECK-DAG:  declare i32 @"llvm.abs.i32"(i32, i1)
// CHECK-DAG:  declare i32 @"llvm.ctpop.i32"(i32)

// CHECK:      define void @"cpu_math"(ptr noalias %[[F:[A-Za-z0-9_.]+]], ptr noalias %[[D:[A-Za-z0-9_.]+]], ptr noalias %[[H:[A-Za-z0-9_.]+]], ptr noalias %[[I:[A-Za-z0-9_.]+]], ptr noalias %[[O:[A-Za-z0-9_.]+]], ptr noalias %[[OH:[A-Za-z0-9_.]+]], ptr noalias %[[OB:[A-Za-z0-9_.]+]], i32 %{{.+}}, i32 %{{.+}}) {
// CHECK:        %[[X:[A-Za-z0-9_.]+]] = load float, ptr %[[F]], align 4
// CHECK-NEXT:   %[[OV:[A-Za-z0-9_.]+]] = fcmp ogt float %[[X]], 0x40562E4300000000
// CHECK-NEXT:   %[[UN:[A-Za-z0-9_.]+]] = fcmp olt float %[[X]], 0xC059FE36A0000000
// CHECK-NEXT:   %[[HI:[A-Za-z0-9_.]+]] = select i1 %[[OV]], float 0x40562E4300000000, float %[[X]]
// CHECK-NEXT:   %[[XC:[A-Za-z0-9_.]+]] = select i1 %[[UN]], float 0xC059FE36A0000000, float %[[HI]]
// CHECK-NEXT:   %[[XL:[A-Za-z0-9_.]+]] = fmul float %[[XC]], 0x3FF7154760000000
// CHECK-NEXT:   %[[N:[A-Za-z0-9_.]+]] = call float @"llvm.rint.f32"(float %[[XL]])
// CHECK:        %[[NI:[A-Za-z0-9_.]+]] = fptosi float %[[N]] to i32
// CHECK-NEXT:   %[[A:[A-Za-z0-9_.]+]] = ashr i32 %[[NI]], 1
// CHECK-NEXT:   %[[B:[A-Za-z0-9_.]+]] = sub i32 %[[NI]], %[[A]]
// CHECK:        %[[BIG:[A-Za-z0-9_.]+]] = select i1 %[[OV]], float 0x7FF0000000000000, float %{{.+}}
// CHECK-NEXT:   %[[EX:[A-Za-z0-9_.]+]] = select i1 %[[UN]], float 0x0000000000000000, float %[[BIG]]
// CHECK-NEXT:   store float %[[EX]], ptr %[[O]], align 4
// CHECK-NEXT:   %[[Y:[A-Za-z0-9_.]+]] = load double, ptr %[[D]], align 8
// CHECK-NEXT:   %{{.+}} = call double @"exp"(double %[[Y]])
// CHECK:        %[[Z:[A-Za-z0-9_.]+]] = load half, ptr %[[H]], align 2
// CHECK-NEXT:   %[[ZW:[A-Za-z0-9_.]+]] = fpext half %[[Z]] to float
// CHECK-NEXT:   %{{.+}} = fcmp ogt float %[[ZW]], 0x40562E4300000000
// CHECK:        %[[ZE:[A-Za-z0-9_.]+]] = select i1 %{{.+}}, float 0x0000000000000000, float %{{.+}}
// CHECK-NEXT:   %{{.+}} = fptrunc float %[[ZE]] to half
// CHECK:        %{{.+}} = call half @"llvm.fabs.f16"(half %[[Z]])
// CHECK:        %[[R:[A-Za-z0-9_.]+]] = call float @"llvm.sqrt.f32"(float %[[X]])
// CHECK-NEXT:   %{{.+}} = fdiv float 0x3FF0000000000000, %[[R]]
// CHECK:        %{{.+}} = call float @"powf"(float %[[X]], float 0x4000000000000000)
// CHECK:        %{{.+}} = call float @"llvm.powi.f32.i32"(float %[[X]], i32 3)
// CHECK:        %[[V:[A-Za-z0-9_.]+]] = load <2 x float>, ptr %[[F]], align 4
// CHECK-NEXT:   %[[V0:[A-Za-z0-9_.]+]] = extractelement <2 x float> %[[V]], i32 0
// CHECK-NEXT:   %[[T0:[A-Za-z0-9_.]+]] = call float @"tanhf"(float %[[V0]])
// CHECK-NEXT:   %[[W0:[A-Za-z0-9_.]+]] = insertelement <2 x float> undef, float %[[T0]], i32 0
// CHECK-NEXT:   %[[V1:[A-Za-z0-9_.]+]] = extractelement <2 x float> %[[V]], i32 1
// CHECK-NEXT:   %[[T1:[A-Za-z0-9_.]+]] = call float @"tanhf"(float %[[V1]])
// CHECK-NEXT:   %[[W1:[A-Za-z0-9_.]+]] = insertelement <2 x float> %[[W0]], float %[[T1]], i32 1
// CHECK-NEXT:   %[[P4:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[O]], i32 4
// CHECK-NEXT:   store <2 x float> %[[W1]], ptr %[[P4]], align 4
// CHECK:        %{{.+}} = call <2 x float> @"llvm.rint.v2f32"(<2 x float> %{{.+}})
// CHECK:        %{{.+}} = call float @"llvm.maximum.f32"(float %[[X]], float 0x0000000000000000)
// CHECK:        %{{.+}} = call float @"llvm.maxnum.f32"(float %[[X]], float 0x0000000000000000)
// CHECK:        %{{.+}} = call float @"llvm.minimum.f32"(float %[[X]], float 0xFFF0000000000000)
// i1 values are bytes in memory; the constant predicates need no instruction.
// CHECK:        %[[B1:[A-Za-z0-9_.]+]] = fcmp one float %[[X]], 0x0000000000000000
// CHECK-NEXT:   %[[B1W:[A-Za-z0-9_.]+]] = zext i1 %[[B1]] to i8
// CHECK-NEXT:   store i8 %[[B1W]], ptr %[[OB]], align 1
// CHECK:        %{{.+}} = fcmp ord float %[[X]], %[[X]]
// CHECK:        %{{.+}} = fcmp ueq float %[[X]], 0x7FF8000000000000
// CHECK:        %{{.+}} = zext i1 true to i8
// CHECK:        %[[K:[A-Za-z0-9_.]+]] = call i32 @"llvm.fptosi.sat.i32.f32"(float %[[X]])
// CHECK-NEXT:   %{{.+}} = call i8 @"llvm.fptoui.sat.i8.f32"(float %[[X]])
// CHECK:        %[[KW:[A-Za-z0-9_.]+]] = zext i32 %[[K]] to i64
// CHECK-NEXT:   %{{.+}} = sitofp i64 %[[KW]] to float
// CHECK:        %{{.+}} = call i32 @"llvm.smax.i32"(i32 %[[K]], i32 0)
// CHECK:        %{{.+}} = call i32 @"llvm.abs.i32"(i32 %[[K]], i1 false)
// CHECK:        %{{.+}} = call i32 @"llvm.ctpop.i32"(i32 %[[K]])
// floordivsi: truncating division, minus one when inexact and the signs differ.
// CHECK:        %[[Q:[A-Za-z0-9_.]+]] = sdiv i32 %[[K]], -4
// CHECK-NEXT:   %[[QR:[A-Za-z0-9_.]+]] = srem i32 %[[K]], -4
// CHECK-NEXT:   %[[NZ:[A-Za-z0-9_.]+]] = icmp ne i32 %[[QR]], 0
// CHECK-NEXT:   %[[RN:[A-Za-z0-9_.]+]] = icmp slt i32 %[[QR]], 0
// CHECK-NEXT:   %[[BN:[A-Za-z0-9_.]+]] = icmp slt i32 -4, 0
// CHECK-NEXT:   %[[DIFF:[A-Za-z0-9_.]+]] = xor i1 %[[RN]], %[[BN]]
// CHECK-NEXT:   %[[ADJ:[A-Za-z0-9_.]+]] = and i1 %[[NZ]], %[[DIFF]]
// CHECK-NEXT:   %[[ADJW:[A-Za-z0-9_.]+]] = zext i1 %[[ADJ]] to i32
// CHECK-NEXT:   %[[FLOOR:[A-Za-z0-9_.]+]] = sub i32 %[[Q]], %[[ADJW]]
// CHECK-NEXT:   %[[SMALL:[A-Za-z0-9_.]+]] = trunc i32 %[[FLOOR]] to i16
// CHECK-NEXT:   %[[IDX:[A-Za-z0-9_.]+]] = sext i16 %[[SMALL]] to i32
// CHECK-NEXT:   %[[PI:[A-Za-z0-9_.]+]] = getelementptr inbounds i32, ptr %[[I]], i32 %[[IDX]]
// CHECK-NEXT:   store i32 %[[FLOOR]], ptr %[[PI]], align 4
// The exponent loop of an integer power is inline (every function stays self-contained).
// CHECK-NEXT:   %[[NEG:[A-Za-z0-9_.]+]] = icmp slt i32 %[[FLOOR]], 0
// CHECK-NEXT:   br i1 %[[NEG]], label %[[NEGB:[A-Za-z0-9_.]+]], label %[[LOOP:[A-Za-z0-9_.]+]]
// CHECK:      [[LOOP]]:
// CHECK-NEXT:   %[[ACC:[A-Za-z0-9_.]+]] = phi i32 [ 1, %entry ], [ %{{.+}}, %{{.+}} ]
// CHECK:        %[[RES:[A-Za-z0-9_.]+]] = phi i32 [ %{{.+}}, %[[NEGB]] ], [ %[[ACC]], %[[LOOP]] ]
// CHECK-NEXT:   %[[P:[A-Za-z0-9_.]+]] = getelementptr inbounds i32, ptr %[[I]], i32 4
// CHECK-NEXT:   store i32 %[[RES]], ptr %[[P]], align 4
// An unused result is not computed.
// CHECK-NEXT:   ret void
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<2xf32>, memref<1xf64>, memref<1xf16>, memref<8xi32>, memref<16xf32>, memref<2xf16>, memref<4xi1>, index, index) -> ()}> ({
    ^bb0(%f: memref<2xf32>, %d: memref<1xf64>, %h: memref<1xf16>, %i: memref<8xi32>, %o: memref<16xf32>, %oh: memref<2xf16>, %ob: memref<4xi1>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %c4 = arith.constant 4 : index
      %c5 = arith.constant 5 : index
      %c6 = arith.constant 6 : index
      %c7 = arith.constant 7 : index
      %c8 = arith.constant 8 : index
      %c9 = arith.constant 9 : index
      %c10 = arith.constant 10 : index
      %zero = arith.constant 0.000000e+00 : f32
      %two = arith.constant 2.000000e+00 : f32
      %ninf = arith.constant 0xFF800000 : f32
      %nan = arith.constant 0x7FC00000 : f32
      %three = arith.constant 3 : i32
      %zi = arith.constant 0 : i32
      %m4 = arith.constant -4 : i32
      %x = memref.load %f[%c0] : memref<2xf32>
      %e = math.exp %x : f32
      memref.store %e, %o[%c0] : memref<16xf32>
      %y = memref.load %d[%c0] : memref<1xf64>
      %ed = math.exp %y : f64
      memref.store %ed, %d[%c0] : memref<1xf64>
      %z = memref.load %h[%c0] : memref<1xf16>
      %eh = math.exp %z : f16
      memref.store %eh, %oh[%c0] : memref<2xf16>
      %az = math.absf %z : f16
      memref.store %az, %oh[%c1] : memref<2xf16>
      %rs = math.rsqrt %x : f32
      memref.store %rs, %o[%c1] : memref<16xf32>
      %p = math.powf %x, %two : f32
      memref.store %p, %o[%c2] : memref<16xf32>
      %pi = math.fpowi %x, %three : f32, i32
      memref.store %pi, %o[%c3] : memref<16xf32>
      %v = vector.load %f[%c0] : memref<2xf32>, vector<2xf32>
      %tv = math.tanh %v : vector<2xf32>
      vector.store %tv, %o[%c4] : memref<16xf32>, vector<2xf32>
      %ev = math.exp %v : vector<2xf32>
      vector.store %ev, %o[%c10] : memref<16xf32>, vector<2xf32>
      %mx = arith.maximumf %x, %zero : f32
      memref.store %mx, %o[%c6] : memref<16xf32>
      %mn = arith.maxnumf %x, %zero : f32
      memref.store %mn, %o[%c7] : memref<16xf32>
      %mi = arith.minimumf %x, %ninf : f32
      memref.store %mi, %o[%c8] : memref<16xf32>
      %b1 = arith.cmpf one, %x, %zero : f32
      memref.store %b1, %ob[%c0] : memref<4xi1>
      %b2 = arith.cmpf ord, %x, %x : f32
      memref.store %b2, %ob[%c1] : memref<4xi1>
      %b3 = arith.cmpf ueq, %x, %nan : f32
      memref.store %b3, %ob[%c2] : memref<4xi1>
      %b4 = arith.cmpf true, %x, %x : f32
      memref.store %b4, %ob[%c3] : memref<4xi1>
      %k = arith.fptosi %x : f32 to i32
      %ku = arith.fptoui %x : f32 to i8
      %kw = arith.extui %ku : i8 to i32
      memref.store %kw, %i[%c0] : memref<8xi32>
      %uf = arith.uitofp %k : i32 to f32
      memref.store %uf, %o[%c9] : memref<16xf32>
      %sm = arith.maxsi %k, %zi : i32
      memref.store %sm, %i[%c1] : memref<8xi32>
      %ab = math.absi %k : i32
      memref.store %ab, %i[%c2] : memref<8xi32>
      %pc = math.ctpop %k : i32
      memref.store %pc, %i[%c3] : memref<8xi32>
      %fl = arith.floordivsi %k, %m4 : i32
      %small = arith.trunci %fl : i32 to i16
      %idx = arith.index_cast %small : i16 to index
      memref.store %fl, %i[%idx] : memref<8xi32>
      %pw = math.ipowi %three, %fl : i32
      memref.store %pw, %i[%c4] : memref<8xi32>
      %unused = math.exp %x : f32
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_math"} : () -> ()
  }) : () -> ()
}
