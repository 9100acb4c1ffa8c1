"""Camera noise made the way a camera makes it: sensor noise at the Bayer site, carried through the in-camera steps.

A clean sRGB image x is taken back to the sensor (tone curve and sRGB gamma undone, colour matrix and white balance
undone, mosaicked), Poisson–Gaussian noise of variance a·v + b is drawn per Bayer site, and both the clean and the
noisy mosaic are developed forward again (demosaic, white balance, colour matrix, tone). Their difference is the
camera's noise in sRGB; in-camera noise reduction (a luma and a chroma blur) and sharpening act on it, it is added to
x, and the sum is rounded to 8 bits and JPEG-compressed. The clean target stays x itself, so a denoiser trained on
these pairs learns the noise, not the demosaicking error of the clean photo. Brooks et al., CVPR 2019 ("Unprocessing
images for learned raw denoising") and CBDNet's ISP (Guo et al., CVPR 2019) describe the same chain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from ..errors import NoiseSpecError

#: The Bayer layouts by the colour at (0,0), (0,1), (1,0), (1,1); OpenCV names each by its second row's first two.
CFA_CODES = {"RGGB": cv2.COLOR_BayerBG2RGB, "GRBG": cv2.COLOR_BayerGB2RGB,
             "GBRG": cv2.COLOR_BayerGR2RGB, "BGGR": cv2.COLOR_BayerRG2RGB}
CFA_CODES_EA = {"RGGB": cv2.COLOR_BayerBG2RGB_EA, "GRBG": cv2.COLOR_BayerGB2RGB_EA,
                "GBRG": cv2.COLOR_BayerGR2RGB_EA, "BGGR": cv2.COLOR_BayerRG2RGB_EA}
CHANNEL = {"R": 0, "G": 1, "B": 2}
DEMOSAIC = ("bilinear", "edge-aware")
SUBSAMPLING = {"4:4:4": 0x111111, "4:2:2": 0x211111, "4:2:0": 0x411111}
#: Headroom for the noisy mosaic below zero while it is demosaicked (read noise swings dark pixels negative).
_PEDESTAL = 0.0625


@dataclass(frozen=True)
class CameraPipeline:
    """The few numbers that shape a camera's sRGB noise.

    ``shot``/``read``: the sensor's variance a·v + b per Bayer channel (R, G, B) on linear values in [0,1] before white
    balance; ``wb``: white-balance gains (R, G, B); ``saturation``: how far the colour matrix is from the identity (0:
    none, typical cameras 0.4–1); ``contrast``: an S-curve on top of sRGB's gamma; ``luma_blur``/``chroma_blur``: the
    σ in pixels of in-camera noise reduction on brightness and on colour; ``sharpen``: unsharp-mask amount on
    brightness; ``jpeg_quality`` (None: no JPEG) and ``subsampling``."""

    shot: tuple[float, float, float] = (1e-3, 1e-3, 1e-3)
    read: tuple[float, float, float] = (1e-5, 1e-5, 1e-5)
    wb: tuple[float, float, float] = (2.0, 1.0, 1.6)
    saturation: float = 0.6
    contrast: float = 0.0
    demosaic: str = "edge-aware"
    cfa: str = "RGGB"
    luma_blur: float = 0.0
    chroma_blur: float = 0.0
    sharpen: float = 0.0
    jpeg_quality: int | None = None
    subsampling: str = "4:2:0"
    extra: dict = field(default_factory=dict, compare=False)  # provenance (e.g. what calibration measured)

    def __post_init__(self) -> None:
        if self.demosaic not in DEMOSAIC or self.cfa not in CFA_CODES or self.subsampling not in SUBSAMPLING:
            raise NoiseSpecError(f"camera pipeline: demosaic {self.demosaic!r}, CFA {self.cfa!r} or subsampling "
                                 f"{self.subsampling!r} unknown")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise NoiseSpecError(f"camera pipeline: JPEG quality {self.jpeg_quality} is outside 1–100")
        if min(self.shot) < 0 or min(self.read) < 0 or min(self.wb) <= 0:
            raise NoiseSpecError("camera pipeline: noise variances must be ≥ 0 and white-balance gains > 0")

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("extra")
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "CameraPipeline":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "extra"}
        for k in ("shot", "read", "wb"):
            if k in known:
                known[k] = tuple(float(v) for v in known[k])
        return cls(**known)

    def scaled(self, gain: float) -> "CameraPipeline":
        """The same camera at ``gain`` times the sensor's noise variance (another ISO, roughly)."""
        return replace(self, shot=tuple(s * gain for s in self.shot), read=tuple(r * gain for r in self.read))


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def colour_matrix(saturation: float) -> np.ndarray:
    """Camera RGB → sRGB: rows sum to one (white stays white), the diagonal 1 + s·⅔, as camera matrices look."""
    return (1 + saturation) * np.eye(3) - saturation / 3 * np.ones((3, 3))


_T = np.linspace(0.0, 1.0, 4097)


def tone(t: np.ndarray, contrast: float) -> np.ndarray:
    """sRGB-encoded values through an S-curve: (1 − c)·t + c·smoothstep(t), monotone for c in [0, 1]."""
    return t if contrast == 0 else (1 - contrast) * t + contrast * t * t * (3 - 2 * t)


def untone(s: np.ndarray, contrast: float) -> np.ndarray:
    """The inverse of :func:`tone` (by table)."""
    return s if contrast == 0 else np.interp(s, tone(_T, contrast), _T)


def mosaic(cam: np.ndarray, cfa: str) -> np.ndarray:
    """H×W×3 → H×W: each site keeps the channel its colour filter passes."""
    out = np.empty(cam.shape[:2], cam.dtype)
    for i, colour in enumerate(cfa):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = cam[dy::2, dx::2, CHANNEL[colour]]
    return out


def cfa_map(shape: tuple[int, int], cfa: str, values: tuple[float, float, float]) -> np.ndarray:
    """H×W map of a per-channel value at each Bayer site."""
    out = np.empty(shape)
    for i, colour in enumerate(cfa):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = values[CHANNEL[colour]]
    return out


def demosaic(raw: np.ndarray, cfa: str, method: str) -> np.ndarray:
    """H×W mosaic in [0,1] (with headroom) → H×W×3, by OpenCV's bilinear or edge-aware demosaicking on 16 bits."""
    codes = CFA_CODES_EA if method == "edge-aware" else CFA_CODES
    r16 = np.round(np.clip((raw + _PEDESTAL) / (1 + 2 * _PEDESTAL), 0, 1) * 65535).astype(np.uint16)
    rgb = cv2.cvtColor(r16, codes[cfa]).astype(np.float64) / 65535
    return rgb * (1 + 2 * _PEDESTAL) - _PEDESTAL


def to_linear_rgb(raw: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """A mosaic forward to linear sRGB primaries: demosaic, white balance, colour matrix (all linear)."""
    return (demosaic(raw, p.cfa, p.demosaic) * np.asarray(p.wb)) @ colour_matrix(p.saturation).T


def encode(rgb: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """Linear RGB → the camera's sRGB: gamma and tone curve (values outside [0,1] are cut)."""
    return tone(linear_to_srgb(rgb), p.contrast)


def develop(raw: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """A mosaic forward to sRGB: demosaic, white balance, colour matrix, gamma, tone (unclipped above 1 is cut)."""
    return encode(to_linear_rgb(raw, p), p)


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(9)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _encoding_bias(rgb: np.ndarray, var: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """E[encode(rgb + n)] − encode(rgb) for Gaussian noise n of variance ``var`` (nine-point Gauss–Hermite; fewer
    points miss the steep, clipped foot of the sRGB curve): the curve is concave and cut at 0, so noise shifts the
    average photo."""
    sd = np.sqrt(var)
    mean = sum(w * encode(rgb + z * sd, p) for z, w in zip(_NODES, _WEIGHTS))
    return mean - encode(rgb, p)


def to_sensor(x: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """Clean sRGB H×W×3 → the linear camera RGB that developing would have turned into it (clipped to [0,1])."""
    lin = srgb_to_linear(untone(np.clip(x, 0, 1), p.contrast))
    cam = lin @ np.linalg.inv(colour_matrix(p.saturation)).T / np.asarray(p.wb)
    return np.clip(cam, 0.0, 1.0)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return a if sigma <= 0 else cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def in_camera_processing(noise: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """Noise reduction (luma and chroma blur) and sharpening, on the noise field in YCbCr."""
    if p.luma_blur <= 0 and p.chroma_blur <= 0 and p.sharpen <= 0:
        return noise
    ycc = noise @ _YCC.T
    y = _blur(ycc[..., 0], p.luma_blur)
    if p.sharpen > 0:
        y = y + p.sharpen * (y - _blur(y, 1.0))
    c = np.stack([_blur(ycc[..., k], p.chroma_blur) for k in (1, 2)], axis=-1)
    return np.concatenate([y[..., None], c], axis=-1) @ np.linalg.inv(_YCC).T


def jpeg(img8: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    """Round-trip an H×W×3 uint8 RGB image through JPEG (OpenCV's libjpeg) at this quality and chroma subsampling."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SUBSAMPLING[subsampling]]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img8[..., ::-1]), params)
    if not ok:
        raise NoiseSpecError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def camera_noise(x: np.ndarray, p: CameraPipeline, rng: np.random.Generator) -> np.ndarray:
    """The camera's noise for the clean sRGB image x (H×W×3 in [0,1]), in sRGB, before 8-bit rounding and JPEG.

    It is made zero-mean: through the concave tone curve noise shifts the average photo by up to a few levels of
    255 (Jensen), and references made by averaging many shots (PolyU, SIDD) hold that shift, so the denoiser's
    target, x, stands for the expected photo rather than the noise-free render."""
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise NoiseSpecError("camera pipeline noise needs an RGB image")
    raw = mosaic(to_sensor(x, p), p.cfa)
    var = np.clip(raw, 0, None) * cfa_map(raw.shape, p.cfa, p.shot) + cfa_map(raw.shape, p.cfa, p.read)
    noisy_raw = raw + rng.standard_normal(raw.shape) * np.sqrt(var)
    clean_rgb, noisy_rgb = to_linear_rgb(raw, p), to_linear_rgb(noisy_raw, p)
    noise = encode(noisy_rgb, p) - encode(clean_rgb, p)
    local_var = cv2.GaussianBlur((noisy_rgb - clean_rgb) ** 2, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT)
    noise -= _encoding_bias(clean_rgb, local_var, p)  # zero-mean: the target is the photo's expectation
    return in_camera_processing(noise, p)


def finish(y: np.ndarray, p: CameraPipeline) -> np.ndarray:
    """Round to 8 bits and compress as the camera saves the photo; float32 in [0,1]."""
    y8 = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
    if p.jpeg_quality is not None:
        y8 = jpeg(y8, p.jpeg_quality, p.subsampling)
    return y8.astype(np.float32) / 255


def render(x: np.ndarray, p: CameraPipeline, rng: np.random.Generator) -> np.ndarray:
    """The photo this camera would save of the clean sRGB scene x: x + its noise, 8-bit, JPEG (float32 in [0,1])."""
    return finish(np.asarray(x, np.float64) + camera_noise(x, p, rng), p)
