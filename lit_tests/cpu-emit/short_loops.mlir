// RUN: visc-opt %s -t cpu | filecheck %s
// RUN: visc-opt %s -t cpu | python -c "import sys, llvmlite.binding as b; b.parse_assembly(sys.stdin.read()).verify()"

// A scalar innermost loop of 8..127 static iterations (a 7x7 plane: 49) is left to LLVM's
// loop vectorizer whole: its back edge names a distinct !llvm.loop node that disables
// unrolling and interleaving (fully unrolled, LLVM vectorized the loop around it with
// gathers; interleaved four times, 49 iterations were too few for a 16-lane vector body).
// Loops around other loops, longer loops and loops of vectors get no hints. A loop the
// lowering marked vision.unroll = 0 (the packed conv's lane stores) is unrolled fully. The
// nodes follow their function, so each function's text stays a self-contained unit.

// CHECK:      define void @"cpu_scale"
// CHECK:        br label %{{.*}}, !llvm.loop ![[L:[0-9]+]]
// CHECK-NOT:    !llvm.loop
// CHECK:      }
// CHECK-NEXT: ![[L]] = distinct !{![[L]], ![[U:[0-9]+]], ![[I:[0-9]+]]}
// CHECK-NEXT: ![[U]] = !{!"llvm.loop.unroll.disable"}
// CHECK-NEXT: ![[I]] = !{!"llvm.loop.interleave.count", i32 1}
// CHECK:      define void @"cpu_long"
// CHECK-NOT:  !llvm.loop
// CHECK:      define void @"cpu_vectors"
// CHECK-NOT:  !llvm.loop
// CHECK:      define void @"cpu_lanes"
// CHECK:        br label %{{.*}}, !llvm.loop ![[F:[0-9]+]]
// CHECK:      }
// CHECK-NEXT: ![[F]] = distinct !{![[F]], ![[FULL:[0-9]+]]}
// CHECK-NEXT: ![[FULL]] = !{!"llvm.loop.unroll.full"}
builtin.module attributes {gpu.container_module} {
  "gpu.module"() <{sym_name = "cpu_kernels"}> ({
    "gpu.func"() <{function_type = (memref<8x49xf32>, memref<8xf32>, memref<8x49xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<8x49xf32>, %s: memref<8xf32>, %y: memref<8x49xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c49 = arith.constant 49 : index
      scf.for %i = %begin to %end step %c1 {
        scf.for %j = %c0 to %c49 step %c1 {
          %a = memref.load %x[%i, %j] : memref<8x49xf32>
          %b = memref.load %s[%i] : memref<8xf32>
          %m = arith.mulf %a, %b : f32
          memref.store %m, %y[%i, %j] : memref<8x49xf32>
        }
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_scale"} : () -> ()
    "gpu.func"() <{function_type = (memref<200xf32>, memref<200xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<200xf32>, %y: memref<200xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c200 = arith.constant 200 : index
      scf.for %j = %c0 to %c200 step %c1 {
        %a = memref.load %x[%j] : memref<200xf32>
        memref.store %a, %y[%j] : memref<200xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_long"} : () -> ()
    "gpu.func"() <{function_type = (memref<64xf32>, memref<4xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<64xf32>, %y: memref<4xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c4 = arith.constant 4 : index
      %c64 = arith.constant 64 : index
      %zero = arith.constant dense<0.000000e+00> : vector<4xf32>
      %sum = scf.for %j = %c0 to %c64 step %c4 iter_args(%acc = %zero) -> (vector<4xf32>) {
        %v = vector.load %x[%j] : memref<64xf32>, vector<4xf32>
        %n = arith.addf %acc, %v : vector<4xf32>
        scf.yield %n : vector<4xf32>
      }
      vector.store %sum, %y[%c0] : memref<4xf32>, vector<4xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_vectors"} : () -> ()
    "gpu.func"() <{function_type = (memref<16xf32>, memref<16xf32>, index, index) -> ()}> ({
    ^bb0(%x: memref<16xf32>, %y: memref<16xf32>, %begin: index, %end: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c16 = arith.constant 16 : index
      scf.for %q = %c0 to %c16 step %c1 {
        %a = memref.load %x[%q] : memref<16xf32>
        memref.store %a, %y[%q] : memref<16xf32>
      } {vision.unroll = 0 : i64}
      "gpu.return"() : () -> ()
    }) {sym_name = "cpu_lanes"} : () -> ()
  }) : () -> ()
}
