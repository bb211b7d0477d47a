// RUN: not visc-opt %s -p 'vision-default-schedule{target=vulkan}' 2>&1 | filecheck %s --check-prefix=TARGET
// RUN: not visc-opt %s -p 'vision-default-schedule{device_type=fpga}' 2>&1 | filecheck %s --check-prefix=DEVICE

// TARGET: error: vision-default-schedule: unknown target 'vulkan' (known: opencl, cuda, cpu)
// DEVICE: error: vision-default-schedule: unknown device_type 'fpga' (known: gpu, cpu, auto)

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  func.return %x : tensor<4xf32>
}
