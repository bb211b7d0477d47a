// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// An scf.if with results branches to a then and an else block that both jump to a join
// block, whose phis (one incoming value per branch, from the block the branch ended in)
// are the results. An scf.if without results and with an empty else jumps straight to the
// join. An scf.while's before region gets phis; its scf.condition leaves or enters the
// after region, whose yield is the back edge; the results are the condition's operands.

// CHECK:      define void @"cpu_if"(ptr noalias %[[X:[A-Za-z0-9_.]+]], i32 %{{.+}}, i32 %{{.+}}) {
// CHECK:        %[[V:[A-Za-z0-9_.]+]] = load float, ptr %{{.+}}, align 4
// CHECK-NEXT:   %[[C:[A-Za-z0-9_.]+]] = fcmp ult float %[[V]], 0x0000000000000000
// CHECK-NEXT:   br i1 %[[C]], label %[[THEN:[A-Za-z0-9_.]+]], label %[[ELSE:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[THEN]]:
// CHECK-NEXT:   %[[N:[A-Za-z0-9_.]+]] = fneg float %[[V]]
// CHECK-NEXT:   br label %[[JOIN:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[ELSE]]:
// CHECK-NEXT:   %[[D:[A-Za-z0-9_.]+]] = fmul float %[[V]], 0x4000000000000000
// CHECK-NEXT:   br label %[[JOIN]]
// CHECK-NEXT: [[JOIN]]:
// CHECK-NEXT:   %[[R:[A-Za-z0-9_.]+]] = phi float [ %[[N]], %[[THEN]] ], [ %[[D]], %[[ELSE]] ]
// CHECK-NEXT:   %[[R2:[A-Za-z0-9_.]+]] = phi i32 [ 1, %[[THEN]] ], [ 2, %[[ELSE]] ]
// CHECK-NEXT:   %[[O:[A-Za-z0-9_.]+]] = fcmp uno float %[[R]], %[[R]]
// CHECK-NEXT:   br i1 %[[O]], label %[[STORE:[A-Za-z0-9_.]+]], label %[[AFTER:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[STORE]]:
// CHECK-NEXT:   store float %[[R]], ptr %[[X]], align 4
// CHECK-NEXT:   br label %[[AFTER]]
// CHECK-NEXT: [[AFTER]]:
// CHECK-NEXT:   br label %[[HEAD:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[HEAD]]:
// CHECK-NEXT:   %[[W:[A-Za-z0-9_.]+]] = phi i32 [ %[[R2]], %[[AFTER]] ], [ %[[W2:[A-Za-z0-9_.]+]], %[[WB:[A-Za-z0-9_.]+]] ]
// CHECK-NEXT:   %[[WC:[A-Za-z0-9_.]+]] = icmp slt i32 %[[W]], 100
// CHECK-NEXT:   br i1 %[[WC]], label %[[WB]], label %[[WEXIT:[A-Za-z0-9_.]+]]
// CHECK-NEXT: [[WB]]:
// CHECK-NEXT:   %[[W2]] = shl i32 %[[W]], 1
// CHECK-NEXT:   br label %[[HEAD]]
// CHECK-NEXT: [[WEXIT]]:
// CHECK-NEXT:   %[[F:[A-Za-z0-9_.]+]] = sitofp i32 %[[W]] to float
// CHECK-NEXT:   %[[G:[A-Za-z0-9_.]+]] = getelementptr inbounds float, ptr %[[X]], i32 1
// CHECK-NEXT:   store float %[[F]], ptr %[[G]], align 4
// CHECK-NEXT:   ret void
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<2xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<2xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %zero = arith.constant 0.000000e+00 : f32
      %two = arith.constant 2.000000e+00 : f32
      %v = memref.load %x[%c1] : memref<2xf32>
      %neg = arith.cmpf ult, %v, %zero : f32
      %r, %k = scf.if %neg -> (f32, i32) {
        %n = arith.negf %v : f32
        %one = arith.constant 1 : i32
        scf.yield %n, %one : f32, i32
      } else {
        %d = arith.mulf %v, %two : f32
        %i2 = arith.constant 2 : i32
        scf.yield %d, %i2 : f32, i32
      }
      %nan = arith.cmpf uno, %r, %r : f32
      scf.if %nan {
        memref.store %r, %x[%c0] : memref<2xf32>
      } else {
      }
      %w = scf.while (%a = %k) : (i32) -> i32 {
        %limit = arith.constant 100 : i32
        %go = arith.cmpi slt, %a, %limit : i32
        scf.condition(%go) %a : i32
      } do {
      ^bb1(%b: i32):
        %one = arith.constant 1 : i32
        %b2 = arith.shli %b, %one : i32
        scf.yield %b2 : i32
      }
      %f = arith.sitofp %w : i32 to f32
      memref.store %f, %x[%c1] : memref<2xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_if"} : () -> ()
  }) : () -> ()
}
