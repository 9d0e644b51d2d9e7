"""Reference image checkpoints for crates/pretext-nn/tests/image_checkpoints.rs.

Builds, in plain PyTorch (no timm, no transformers), the networks timm and torchvision define
and saves them with random weights in their names:

  resnet18_timm/         timm/torchvision ResNet-18 (fc.* and num_batches_tracked included),
                         config.json in timm's hub format (architecture, pretrained_cfg)
  resnet50_torchvision/  the real ResNet-50 (bottleneck, stride on the 3x3), no config.json
  vit_s16_timm/          ViT-S/16 at 224 px in timm's (= DINO's original) names, timm config
  vit_s16_hf/            the same weights in Hugging Face ViTModel names, HF config.json
                         (layer_norm_eps 1e-12) and preprocessor_config.json (mean = std = 0.5)
  vit_b16_2blocks/       ViT-B/16's width and heads (768, 12) with 2 blocks and a head, no
                         config.json (the heads come from the width)

Batch-norm running statistics are those of a calibration batch of images like the compared
ones (non-trivial, and they keep eval-mode features of order one, so that 1e-5 is a float32
tolerance); layer norms have random affine weights. Then it writes
reference.safetensors: two RGB images in [0, 1] at 224 px and two grey ones at 28 px, and each
network's pre-logits features (eval mode) of

  <name>.rgb   the RGB images normalized with the model's mean and std
  <name>.grey  the grey images repeated to 3 channels, resized bilinearly to 224 px
               (F.interpolate, align_corners=False) and normalized the same way

and, as <name>.<input>.float32_error, how far those float32 features are from the same
network's in float64.

The safetensors writer is written out here: the venv has torch and numpy only.

Usage: python3 image_checkpoints.py OUT_DIR
"""

import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def save_safetensors(tensors, path):
    """Writes {name: tensor} in the safetensors format (8-byte header length, JSON, data)."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        data = tensor.numpy().tobytes()
        header[name] = {
            "dtype": dtypes[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(encoded)))
        file.write(encoded)
        for blob in blobs:
            file.write(blob)


# --- ResNet (torchvision.models.resnet, timm.models.resnet with default arguments) ---------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        """The pre-logits features: global average pooling of the last stage."""
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3))


# --- ViT (timm.models.vision_transformer.VisionTransformer, class-token pooling) -----------


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, dim, depth, heads, num_classes=0, img_size=224, patch=16, eps=1e-6):
        super().__init__()
        grid = img_size // patch
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + grid * grid, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.head = nn.Linear(dim, num_classes) if num_classes else nn.Identity()

    def features(self, x):
        """timm's forward_head(forward_features(x), pre_logits=True): [CLS] after the norm."""
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.norm(self.blocks(x))[:, 0]


def set_eps(model, eps):
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = eps


def randomize_norms(model):
    """Random affine weights in every norm, smaller (0.1 to 0.5) in the last batch norm of
    each residual branch, as in trained ResNets (timm starts them at zero): without that a
    random ResNet-50's float32 features are only good to about 1e-4 (against float64), and
    no 1e-5 comparison could pass. Batch norms' running statistics come from a calibration
    batch like the images compared (cumulative averages over it, in train mode)."""
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.normal_(module.bias, 0.0, 0.1)
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    for module in model.modules():
        if isinstance(module, (BasicBlock, Bottleneck)):
            last = module.bn3 if isinstance(module, Bottleneck) else module.bn2
            nn.init.uniform_(last.weight, 0.1, 0.5)
    if any(isinstance(module, nn.BatchNorm2d) for module in model.modules()):
        model.train()
        with torch.no_grad():
            noise = torch.rand(4, 3, 112, 112)
            smooth = F.interpolate(torch.rand(4, 1, 14, 14), size=(112, 112), mode="bilinear")
            pixels = torch.cat([noise, smooth.expand(-1, 3, -1, -1)])
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
            model.features((pixels - mean) / std)
    model.eval()


def hf_vit_names(state, depth):
    """timm ViT names -> Hugging Face ViTModel names (q, k, v split from the fused qkv)."""
    out = {
        "embeddings.cls_token": state["cls_token"],
        "embeddings.position_embeddings": state["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
        "layernorm.weight": state["norm.weight"],
        "layernorm.bias": state["norm.bias"],
    }
    modules = {
        "norm1": "layernorm_before",
        "attn.proj": "attention.output.dense",
        "norm2": "layernorm_after",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }
    for n in range(depth):
        for timm_name, hf_name in modules.items():
            for param in ("weight", "bias"):
                out[f"encoder.layer.{n}.{hf_name}.{param}"] = state[f"blocks.{n}.{timm_name}.{param}"]
        for param in ("weight", "bias"):
            q, k, v = state[f"blocks.{n}.attn.qkv.{param}"].chunk(3, 0)
            for name, part in (("query", q), ("key", k), ("value", v)):
                out[f"encoder.layer.{n}.attention.attention.{name}.{param}"] = part
    return out


def main(out):
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 224, 224)
    grey = torch.rand(2, 1, 28, 28)
    reference = {"rgb_pixels": rgb, "grey_pixels": grey}

    def features(name, model, mean, std):
        mean = torch.tensor(mean).view(1, 3, 1, 1)
        std = torch.tensor(std).view(1, 3, 1, 1)
        resized = F.interpolate(
            grey.expand(-1, 3, -1, -1), size=(224, 224), mode="bilinear", align_corners=False
        )
        for input, pixels in (("rgb", rgb), ("grey", resized)):
            with torch.no_grad():
                single = model.features((pixels - mean) / std)
                double = model.double().features((pixels.double() - mean) / std)
                model.float()
            reference[f"{name}.{input}"] = single
            # How far float32 itself is from the exact features: the most two float32
            # computations of them that round differently can be expected to agree to.
            error = (single.double() - double).abs().max()
            reference[f"{name}.{input}.float32_error"] = error.float().reshape(1)

    def folder(name, state, config=None, preprocessor=None):
        path = os.path.join(out, name)
        os.makedirs(path, exist_ok=True)
        save_safetensors(state, os.path.join(path, "model.safetensors"))
        if config is not None:
            with open(os.path.join(path, "config.json"), "w") as file:
                json.dump(config, file)
        if preprocessor is not None:
            with open(os.path.join(path, "preprocessor_config.json"), "w") as file:
                json.dump(preprocessor, file)

    timm_cfg = {"input_size": [3, 224, 224], "mean": IMAGENET_MEAN, "std": IMAGENET_STD}

    resnet18 = ResNet(BasicBlock, [2, 2, 2, 2])
    randomize_norms(resnet18)
    folder(
        "resnet18_timm",
        resnet18.state_dict(),
        {"architecture": "resnet18.a1_in1k", "num_classes": 1000, "pretrained_cfg": timm_cfg},
    )
    features("resnet18_timm", resnet18, IMAGENET_MEAN, IMAGENET_STD)

    resnet50 = ResNet(Bottleneck, [3, 4, 6, 3])
    randomize_norms(resnet50)
    folder("resnet50_torchvision", resnet50.state_dict())
    features("resnet50_torchvision", resnet50, IMAGENET_MEAN, IMAGENET_STD)

    vit_s = VisionTransformer(384, 12, 6)
    randomize_norms(vit_s)
    state = vit_s.state_dict()
    folder(
        "vit_s16_timm",
        state,
        {
            "architecture": "vit_small_patch16_224.dino",
            "num_classes": 0,
            "global_pool": "token",
            "pretrained_cfg": timm_cfg,
        },
    )
    features("vit_s16_timm", vit_s, IMAGENET_MEAN, IMAGENET_STD)

    hf_state = hf_vit_names(state, 12)
    hf_state["pooler.dense.weight"] = torch.randn(384, 384)
    hf_state["pooler.dense.bias"] = torch.randn(384)
    folder(
        "vit_s16_hf",
        hf_state,
        {
            "model_type": "vit",
            "architectures": ["ViTModel"],
            "hidden_size": 384,
            "num_hidden_layers": 12,
            "num_attention_heads": 6,
            "intermediate_size": 1536,
            "hidden_act": "gelu",
            "layer_norm_eps": 1e-12,
            "image_size": 224,
            "patch_size": 16,
            "num_channels": 3,
            "qkv_bias": True,
        },
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": 224, "width": 224}},
    )
    set_eps(vit_s, 1e-12)
    features("vit_s16_hf", vit_s, [0.5] * 3, [0.5] * 3)

    vit_b = VisionTransformer(768, 2, 12, num_classes=1000)
    randomize_norms(vit_b)
    folder("vit_b16_2blocks", vit_b.state_dict())
    features("vit_b16_2blocks", vit_b, IMAGENET_MEAN, IMAGENET_STD)

    save_safetensors(reference, os.path.join(out, "reference.safetensors"))
    for name, value in reference.items():
        if name.endswith(("rgb", "grey")):
            assert torch.isfinite(value).all() and value.std() > 1e-3, name
            error = reference[f"{name}.float32_error"].item()
            print(f"{name}: std {value.std():.3f}, max |x| {value.abs().max():.3f}, float32 error {error:.1e}")


if __name__ == "__main__":
    main(sys.argv[1])
