// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// A host function from lower-loops-to-cpu: memref arguments are noalias pointers, then the
// i32 range [begin, end). An scf.for is a header whose phis are the induction variable and
// the carried values (initial values from the block before, yielded ones from the latch),
// an `icmp slt` exit test, the body, and a latch adding the step; the loop's results are
// the header's phis. Constants are literals.

// CHECK:      target triple = "{{.+}}"
// CHECK:      define void @"cpu_sum"(ptr noalias %[[X:[A-Za-z0-9_.]+]], ptr noalias %[[Y:[A-Za-z0-9_.]+]], i32 %[[B:[A-Za-z0-9_.]+]], i32 %[[E:[A-Za-z0-9_.]+]]) {
// CHECK-NEXT: entry:
// CHECK-NEXT:   br label %[[H:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[H]]:
// CHECK-NEXT:   %[[I:[A-Za-z0-9_.]+]] = phi i32 [ %[[B]], %entry ], [ %[[NEXT:[A-Za-z0-9_.]+]], %[[LATCH:[A-Za-z0-9_.]+]] ]
// CHECK-NEXT:   %[[T:[A-Za-z0-9_.]+]] = icmp slt i32 %[[I]], %[[E]]
// CHECK-NEXT:   br i1 %[[T]], label %[[BODY:[A-Za-z0-9_.]+]], label %[[EXIT:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[BODY]]:
// CHECK-NEXT:   br label %[[IH:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[IH]]:
// CHECK-NEXT:   %[[J:[A-Za-z0-9_.]+]] = phi i32 [ 0, %[[BODY]] ], [ %[[JNEXT:[A-Za-z0-9_.]+]], %[[IB:[A-Za-z0-9_.]+]] ]
// CHECK-NEXT:   %[[ACC:[A-Za-z0-9_.]+]] = phi float [ 0x0000000000000000, %[[BODY]] ], [ %[[S:[A-Za-z0-9_.]+]], %[[IB]] ]
// CHECK-NEXT:   %[[IT:[A-Za-z0-9_.]+]] = icmp slt i32 %[[J]], 8
// CHECK-NEXT:   br i1 %[[IT]], label %[[IB]], label %[[LATCH]]
// CHECK-NEXT: [[IB]]:
// CHECK-NEXT:   %[[R:[A-Za-z0-9_.]+]] = mul nsw i32 %[[I]], 8
// CHECK-NEXT:   %[[L:[A-Za-z0-9_.]+]] = add nsw i32 %[[R]], %[[J]]
// CHECK-NEXT:   %[[P:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[X]], i32 %[[L]]
// CHECK-NEXT:   %[[V:[A-Za-z0-9_.]+]] = load float, ptr %[[P]], align 4
// CHECK-NEXT:   %[[S]] = fadd float %[[ACC]], %[[V]]
// CHECK-NEXT:   %[[JNEXT]] = add i32 %[[J]], 1
// CHECK-NEXT:   br label %[[IH]]
// CHECK-NEXT: [[LATCH]]:
// CHECK-NEXT:   %[[Q:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[Y]], i32 %[[I]]
// CHECK-NEXT:   store float %[[ACC]], ptr %[[Q]], align 4
// CHECK-NEXT:   %[[NEXT]] = add i32 %[[I]], 1
// CHECK-NEXT:   br label %[[H]]
// CHECK-NEXT: [[EXIT]]:
// CHECK-NEXT:   ret void
// CHECK-NEXT: }
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<4x8xf32>, memref<4xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<4x8xf32>, %y: memref<4xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c8 = arith.constant 8 : index
      %zero = arith.constant 0.000000e+00 : f32
      scf.for %i = %begin to %end step %c1 {
        %sum = scf.for %j = %c0 to %c8 step %c1 iter_args(%acc = %zero) -> (f32) {
          %v = memref.load %x[%i, %j] : memref<4x8xf32>
          %s = arith.addf %acc, %v : f32
          scf.yield %s : f32
        }
        memref.store %sum, %y[%i] : memref<4xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_sum"} : () -> ()
  }) : () -> ()
}
