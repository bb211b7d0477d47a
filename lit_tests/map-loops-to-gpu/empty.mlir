// RUN: visc-opt %s -p map-loops-to-gpu | filecheck %s

// Without loops the module is unchanged: no kernel module, no container attribute.
// CHECK:      builtin.module {
// CHECK-NEXT:   func.func @main(%x: memref<4xf32>)
// CHECK-NEXT:     %w = vision.weight @w : memref<4xf32>
// CHECK-NEXT:     func.return
func.func @main(%x: memref<4xf32>) {
  %w = vision.weight @w : memref<4xf32>
  func.return
}
