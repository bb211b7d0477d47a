// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// A memref is a pointer to its first element. An access linearizes its indices with the
// static strides (row-major, or a strided layout's strides and offset): variable indices
// times their stride (`mul nsw`), summed (`add nsw`) with the constant part folded last,
// into one `getelementptr inbounds`; index 0 everywhere is the pointer itself. A 0-d memref
// is one element. memref.alloca is a stack array allocated at the top of the entry block
// (aligned to at least 4), work-group memory too (a host function runs one work-group at a
// time).

// CHECK:      define void @"cpu_mem"(ptr noalias %[[S:[A-Za-z0-9_.]+]], ptr noalias %[[Z:[A-Za-z0-9_.]+]], ptr noalias %[[X:[A-Za-z0-9_.]+]], i32 %[[B:[A-Za-z0-9_.]+]], i32 %{{.+}}) {
// CHECK-NEXT: entry:
// CHECK-DAG:    %[[PRIV:[A-Za-z0-9_.]+]] = alloca [6 x float], i32 1, align 4
// CHECK-DAG:    %[[BYTES:[A-Za-z0-9_.]+]] = alloca [3 x i8], i32 1, align 4
// CHECK-DAG:    %[[SHARED:[A-Za-z0-9_.]+]] = alloca [8 x double], i32 1, align 8
// CHECK:        %[[SI:[A-Za-z0-9_.]+]] = mul nsw i32 %[[B]], 8
// CHECK-NEXT:   %[[SL:[A-Za-z0-9_.]+]] = add nsw i32 %[[SI]], 5
// CHECK-NEXT:   %[[SP:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[S]], i32 %[[SL]]
// CHECK-NEXT:   %[[V:[A-Za-z0-9_.]+]] = load float, ptr %[[SP]], align 4
// CHECK-NEXT:   %[[W:[A-Za-z0-9_.]+]] = load float, ptr %[[Z]], align 4
// CHECK-NEXT:   %[[PJ:[A-Za-z0-9_.]+]] = mul nsw i32 %[[B]], 3
// CHECK-NEXT:   %[[PL:[A-Za-z0-9_.]+]] = add nsw i32 %[[PJ]], 2
// CHECK-NEXT:   %[[PP:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[PRIV]], i32 %[[PL]]
// CHECK-NEXT:   store float %[[V]], ptr %[[PP]], align 4
// CHECK-NEXT:   store float %[[W]], ptr %[[PRIV]], align 4
// CHECK:        %[[C:[A-Za-z0-9_.]+]] = fcmp olt float %[[V]], %[[W]]
// CHECK-NEXT:   %[[CB:[A-Za-z0-9_.]+]] = zext i1 %[[C]] to i8
// CHECK-NEXT:   %[[BP:[A-Za-z0-9_.]+]] = getelementptr inbounds i8, ptr %[[BYTES]], i32 %[[B]]
// CHECK-NEXT:   store i8 %[[CB]], ptr %[[BP]], align 1
// CHECK:        %[[LB:[A-Za-z0-9_.]+]] = load i8, ptr %{{.+}}, align 1
// CHECK-NEXT:   %[[L1:[A-Za-z0-9_.]+]] = icmp ne i8 %[[LB]], 0
// CHECK-NEXT:   %{{.+}} = select i1 %[[L1]], float %[[V]], float %[[W]]
// CHECK:        store double %{{.+}}, ptr %[[SHARED]], align 8
// CHECK:        %{{.+}} = getelementptr inbounds float, ptr %[[X]], i32 3

// `noalias` is dropped when a launch passes the buffer an argument the function writes
// also as another argument (here through a vision.reshape view).
// CHECK:      define void @"cpu_inplace"(ptr %{{.+}}, ptr %{{.+}}, i32 %{{.+}}, i32 %{{.+}}) {
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4x4xf32, strided<[8, 1], offset: 3>>, memref<f32>, memref<2x2xf32>, index, index) -> ()}> ({
    ^bb0(%s: memref<4x4xf32, strided<[8, 1], offset: 3>>, %z: memref<f32>, %x: memref<2x2xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %v = memref.load %s[%begin, %c2] : memref<4x4xf32, strided<[8, 1], offset: 3>>
      %w = memref.load %z[] : memref<f32>
      %priv = memref.alloca() : memref<2x3xf32>
      memref.store %v, %priv[%begin, %c2] : memref<2x3xf32>
      memref.store %w, %priv[%c0, %c0] : memref<2x3xf32>
      %bytes = memref.alloca() : memref<3xi1>
      %lt = arith.cmpf olt, %v, %w : f32
      memref.store %lt, %bytes[%begin] : memref<3xi1>
      %back = memref.load %bytes[%c1] : memref<3xi1>
      %pick = arith.select %back, %v, %w : f32
      %shared = memref.alloca() : memref<8xf64, 3>
      %wide = arith.extf %pick : f32 to f64
      memref.store %wide, %shared[%c0] : memref<8xf64, 3>
      %again = memref.load %shared[%c0] : memref<8xf64, 3>
      %narrow = arith.truncf %again : f64 to f32
      memref.store %narrow, %x[%c1, %c1] : memref<2x2xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_mem"} : () -> ()
    "gpu.func"() <{function_type = (memref<4xf32>, memref<2x2xf32>, index, index) -> ()}> ({
    ^bb0(%a: memref<4xf32>, %b: memref<2x2xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %v = memref.load %a[%begin] : memref<4xf32>
      memref.store %v, %b[%c0, %begin] : memref<2x2xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_inplace"} : () -> ()
  }) : () -> ()
  func.func @main(%in: memref<4x4xf32, strided<[8, 1], offset: 3>>, %zz: memref<f32>, %out: memref<2x2xf32>) {
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %t = vision.buffer offset 0 : memref<4xf32>
    %view = vision.reshape ins(%t : memref<4xf32>) -> memref<2x2xf32>
    "gpu.launch_func"(%c4, %c1, %c1, %c1, %c1, %c1, %in, %zz, %out) <{kernel = @cpu_kernels::@cpu_mem, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 3, 0>}> : (index, index, index, index, index, index, memref<4x4xf32, strided<[8, 1], offset: 3>>, memref<f32>, memref<2x2xf32>) -> ()
    "gpu.launch_func"(%c4, %c1, %c1, %c1, %c1, %c1, %t, %view) <{kernel = @cpu_kernels::@cpu_inplace, operandSegmentSizes = array<i32: 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 0>}> : (index, index, index, index, index, index, memref<4xf32>, memref<2x2xf32>) -> ()
    func.return
  }
}
