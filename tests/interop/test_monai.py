"""MONAI's 3-D U-Nets: every up-sampling ConvTranspose3d converts and matches torch.

Each module is checked on the very tensor it receives inside the network's forward
pass (captured with a forward hook); the expected value is the module's own output.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nets = pytest.importorskip("monai.networks.nets")

from deconv3d.frameworks import layer_from_torch  # noqa: E402


def networks():
    return {
        "UNet": lambda: nets.UNet(spatial_dims=3, in_channels=1, out_channels=2,
                                  channels=(4, 8, 16), strides=(2, 2), num_res_units=1),
        "BasicUNet": lambda: nets.BasicUNet(spatial_dims=3, in_channels=1, out_channels=2,
                                            features=(4, 4, 8, 8, 16, 4)),
        "DynUNet": lambda: nets.DynUNet(spatial_dims=3, in_channels=1, out_channels=2,
                                        kernel_size=[3, 3, 3], strides=[1, 2, 2],
                                        upsample_kernel_size=[2, 2], filters=[4, 8, 16]),
    }


@pytest.mark.parametrize("name", ["UNet", "BasicUNet", "DynUNet"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_up_sampling_modules_convert_exactly(name, dtype):
    torch.manual_seed(0)
    net = networks()[name]().to(dtype).eval()
    seen = []
    modules = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose3d)]
    assert modules, name
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append((m, args[0], out)))
             for m in modules]
    with torch.no_grad():
        net(torch.randn(1, 1, 16, 32, 48, dtype=dtype))
    for hook in hooks:
        hook.remove()
    assert {id(m) for m, _, _ in seen} == {id(m) for m in modules}
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    for module, x, expected in seen:
        layer = layer_from_torch(module)
        expected = expected.numpy().astype(np.float64)
        error = np.abs(layer(x.numpy()) - expected).max() / np.abs(expected).max()
        assert error < tolerance, (name, module)
