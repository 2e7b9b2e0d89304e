"""Keras: the ``config.json`` of a ``.keras`` archive (or beside the weights), legacy HDF5.

A Keras config is a tree of serialized objects, each a JSON object with a
``class_name`` (and in Keras 3 a ``module`` and a ``registered_name``);
loading imports ``module`` and builds ``class_name`` from it. The allowlist:

* ``module`` one of the Keras modules in :data:`KERAS_CLASSES` (``keras.layers``,
  ``keras.initializers``, ``keras.optimizers``, ... and the few private
  modules Keras writes for its own models) and ``class_name`` one of the
  built-in classes listed for that module; a config without ``module``
  (Keras 2 and legacy HDF5) names a class of any of those lists. A module
  outside Keras is ``keras-module-outside`` (the CVE-2025-1550 path: any
  importable module); an unlisted Keras module or class is
  ``keras-class-unknown`` (Keras' own modules hold functions such as
  ``keras.utils.get_file`` that a config must not reach);
* ``class_name: "function"`` only for the built-in activations, losses and
  metrics of :data:`KERAS_FUNCTIONS`;
* ``registered_name`` null (or the class's own name): anything else names a
  custom registered object (``package>Name``), code outside Keras;
* ``Lambda`` and ``TFOpLambda`` layers are errors (``keras-lambda-layer``):
  a Lambda holds marshalled Python bytecode or names a function, TFOpLambda
  calls TensorFlow functions by name; a ``__lambda__`` object anywhere is
  ``keras-lambda-function``. ``TorchModuleWrapper`` (a pickled torch
  module), ``TFSMLayer`` (a SavedModel from a path), ``JaxLayer`` and
  ``FlaxLayer`` (functions called) are ``keras-code-layer``.

The JSON is parsed with duplicate keys refused, at most :data:`MAX_CONFIG`
bytes, at most :data:`MAX_DEPTH` levels and :data:`MAX_NODES` values.

Legacy HDF5 (``.h5``) is not parsed as HDF5 (no HDF5 library): the first
:data:`HDF5_WINDOW` bytes are searched for the attribute name
``model_config``, which Keras writes on the root group of a whole saved model
(Lambda layers in an ``.h5`` model run when loaded, safe mode or not);
a model config found there as JSON in a global heap collection (``GCOL``,
where h5py keeps a variable-length string) is checked as above. An HDF5 file
without it is a note (weights only, or not Keras).
"""

from __future__ import annotations

import json
from typing import Any

from provenance.formats._detect import Detected, _show
from provenance.formats._scan import FormatFinding, ScanOptions, Severity, Source

__all__ = ["KERAS_CLASSES", "KERAS_FUNCTIONS", "check_hdf5", "check_keras_config"]

MAX_CONFIG = 64 << 20
MAX_DEPTH = 200
MAX_NODES = 1 << 21
#: Findings per config (the rest are counted).
MAX_REPORTED = 100
HDF5_WINDOW = 8 << 20

_LAYERS = """
Activation ActivityRegularization Add AdditiveAttention AlphaDropout Attention AugMix
AutoContrast Average AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D
AvgPool3D BatchNormalization Bidirectional CategoryEncoding CenterCrop Concatenate Conv1D
Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D
Convolution1D Convolution1DTranspose Convolution2D Convolution2DTranspose Convolution3D
Convolution3DTranspose Cropping1D Cropping2D Cropping3D CutMix Dense DepthwiseConv1D
DepthwiseConv2D Discretization Dot Dropout ELU EinsumDense Embedding Equalization Flatten
GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D GlobalAveragePooling2D
GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D
GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D
GroupNormalization GroupQueryAttention HashedCrossing Hashing Identity InputLayer
IntegerLookup LSTM LSTMCell LayerNormalization LeakyReLU Masking MaxPool1D MaxPool2D MaxPool3D
MaxPooling1D MaxPooling2D MaxPooling3D Maximum MelSpectrogram Minimum MixUp MultiHeadAttention
Multiply Normalization PReLU Permute Pipeline RMSNormalization RNN RandAugment RandomBrightness
RandomColorDegeneration RandomColorJitter RandomContrast RandomCrop RandomElasticTransform
RandomErasing RandomFlip RandomGaussianBlur RandomGrayscale RandomHeight RandomHue RandomInvert
RandomPerspective RandomPosterization RandomRotation RandomSaturation RandomSharpness
RandomShear RandomTranslation RandomWidth RandomZoom ReLU RepeatVector Rescaling Reshape
Resizing STFTSpectrogram SeparableConv1D SeparableConv2D SeparableConvolution1D
SeparableConvolution2D SimpleRNN SimpleRNNCell Softmax Solarization SpatialDropout1D
SpatialDropout2D SpatialDropout3D SpectralNormalization StackedRNNCells StringLookup Subtract
TextVectorization ThresholdedReLU TimeDistributed UnitNormalization UpSampling1D UpSampling2D
UpSampling3D Wrapper ZeroPadding1D ZeroPadding2D ZeroPadding3D
"""
_MODELS = "Functional Model Sequential"
_POLICIES = "DTypePolicy FloatDTypePolicy QuantizedDTypePolicy QuantizedFloat8DTypePolicy Policy"
_INITIALIZERS = """
Constant GlorotNormal GlorotUniform HeNormal HeUniform Identity IdentityInitializer LecunNormal
LecunUniform Ones Orthogonal OrthogonalInitializer RandomNormal RandomUniform STFT
STFTInitializer TruncatedNormal VarianceScaling Zeros
"""
_REGULARIZERS = "L1 L1L2 L2 OrthogonalRegularizer"
_CONSTRAINTS = "MaxNorm MinMaxNorm NonNeg UnitNorm"
_OPTIMIZERS = """
Adadelta Adafactor Adagrad Adam AdamW Adamax Ftrl Lamb Lion LossScaleOptimizer Muon Nadam
RMSprop SGD
"""
_SCHEDULES = """
CosineDecay CosineDecayRestarts ExponentialDecay InverseTimeDecay PiecewiseConstantDecay
PolynomialDecay
"""
_LOSSES = """
BinaryCrossentropy BinaryFocalCrossentropy CTC CategoricalCrossentropy
CategoricalFocalCrossentropy CategoricalHinge Circle CosineSimilarity Dice Hinge Huber
KLDivergence LogCosh MeanAbsoluteError MeanAbsolutePercentageError MeanSquaredError
MeanSquaredLogarithmicError Poisson SparseCategoricalCrossentropy SquaredHinge Tversky
"""
_METRICS = """
AUC Accuracy BinaryAccuracy BinaryCrossentropy BinaryIoU CategoricalAccuracy
CategoricalCrossentropy CategoricalHinge ConcordanceCorrelation CosineSimilarity F1Score
FBetaScore FalseNegatives FalsePositives Hinge IoU KLDivergence LogCoshError Mean
MeanAbsoluteError MeanAbsolutePercentageError MeanIoU MeanMetricWrapper MeanSquaredError
MeanSquaredLogarithmicError OneHotIoU OneHotMeanIoU PearsonCorrelation Poisson Precision
PrecisionAtRecall R2Score Recall RecallAtPrecision RootMeanSquaredError
SensitivityAtSpecificity SparseCategoricalAccuracy SparseCategoricalCrossentropy
SparseTopKCategoricalAccuracy SpecificityAtSensitivity SquaredHinge Sum
TopKCategoricalAccuracy TrueNegatives TruePositives
"""

#: Keras modules -> the built-in classes a config may name from each.
KERAS_CLASSES: dict[str, frozenset[str]] = {
    "keras": frozenset((_MODELS + " " + _POLICIES).split()),
    "keras.models": frozenset(_MODELS.split()),
    "keras.src.models.functional": frozenset({"Functional"}),
    "keras.src.models.sequential": frozenset({"Sequential"}),
    "keras.src.models.model": frozenset({"Model"}),
    # tf.keras 2.13+ (tf-keras) writes its engine's private modules
    "keras.src.engine.functional": frozenset({"Functional"}),
    "keras.src.engine.sequential": frozenset({"Sequential"}),
    "keras.src.engine.training": frozenset({"Model"}),
    "keras.engine.functional": frozenset({"Functional"}),
    "keras.engine.sequential": frozenset({"Sequential"}),
    "keras.engine.training": frozenset({"Model"}),
    "keras.layers": frozenset(_LAYERS.split()),
    "keras.initializers": frozenset(_INITIALIZERS.split()),
    "keras.regularizers": frozenset(_REGULARIZERS.split()),
    "keras.constraints": frozenset(_CONSTRAINTS.split()),
    "keras.optimizers": frozenset(_OPTIMIZERS.split()),
    "keras.optimizers.schedules": frozenset(_SCHEDULES.split()),
    "keras.losses": frozenset(_LOSSES.split()),
    "keras.metrics": frozenset(_METRICS.split()),
    "keras.dtype_policies": frozenset(_POLICIES.split()),
    "keras.mixed_precision": frozenset(_POLICIES.split()),
}
_ACTIVATIONS = """
celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh
leaky_relu linear log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink
softmax softplus softsign sparse_plus sparse_sigmoid sparsemax squareplus swish tanh
tanh_shrink threshold
"""
_LOSS_FUNCTIONS = """
binary_crossentropy binary_focal_crossentropy categorical_crossentropy
categorical_focal_crossentropy categorical_hinge cosine_similarity ctc dice hinge huber
kl_divergence kld kullback_leibler_divergence log_cosh logcosh mae mape mean_absolute_error
mean_absolute_percentage_error mean_squared_error mean_squared_logarithmic_error mse msle
poisson sparse_categorical_crossentropy squared_hinge tversky
"""
_METRIC_FUNCTIONS = (
    _LOSS_FUNCTIONS
    + """
binary_accuracy categorical_accuracy sparse_categorical_accuracy
sparse_top_k_categorical_accuracy top_k_categorical_accuracy
"""
)
#: Keras modules -> the built-in functions a ``class_name: "function"`` object may name.
KERAS_FUNCTIONS: dict[str, frozenset[str]] = {
    "keras.activations": frozenset(_ACTIVATIONS.split()),
    "keras.losses": frozenset(_LOSS_FUNCTIONS.split()),
    "keras.metrics": frozenset(_METRIC_FUNCTIONS.split()),
}
#: Plain values Keras 3 serializes as objects without a module.
_SPECIAL = frozenset(
    {
        "__tuple__",
        "__bytes__",
        "__slice__",
        "__ellipsis__",
        "__numpy__",
        "__tensor__",
        "__typespec__",
        "__keras_tensor__",
    }
)
_LAMBDA_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})
_CODE_LAYERS = {
    "TorchModuleWrapper": "holds a pickled torch module (torch.load when built)",
    "TFSMLayer": "loads a TensorFlow SavedModel from a path (a graph of its own)",
    "JaxLayer": "calls JAX functions it was given",
    "FlaxLayer": "calls a Flax module it was given",
}
_ALL_CLASSES = frozenset().union(*KERAS_CLASSES.values())
_ALL_FUNCTIONS = frozenset().union(*KERAS_FUNCTIONS.values())


class _TooBig(Exception):
    pass


def _load(config: bytes) -> tuple[Any, str | None]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise ValueError(f"duplicate key '{_show(k)}'")
            out[k] = v
        return out

    try:
        text = config.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8 (at byte {e.start})"
    try:
        return json.loads(text, object_pairs_hook=pairs), None
    except RecursionError:
        return None, "nested too deep to parse"
    except ValueError as e:
        return None, _show(str(e), 200)


class _Config:
    def __init__(self, file: str, member: str | None, fmt: str) -> None:
        self.file = file
        self.member = member
        self.format = fmt
        self.findings: list[FormatFinding] = []
        self.skipped = 0
        self.nodes = 0

    def add(self, code: str, message: str, severity: Severity = "error") -> None:
        if len(self.findings) >= MAX_REPORTED:
            self.skipped += 1
            return
        self.findings.append(
            FormatFinding(self.file, self.format, code, message, None, self.member, severity)
        )

    def walk(self, value: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooBig(f"more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise _TooBig(f"nested more than {MAX_DEPTH} deep (at {path})")
        if isinstance(value, list):
            for i, v in enumerate(value):
                self.walk(v, f"{path}[{i}]", depth + 1)
        elif isinstance(value, dict):
            if "class_name" in value:
                self.check_object(value, path)
            for k, v in value.items():
                self.walk(v, f"{path}.{_show(k, 40)}", depth + 1)

    def check_object(self, obj: dict[str, Any], path: str) -> None:
        cn = obj.get("class_name")
        module = obj.get("module")
        where = f"at {path or '$'}"
        if not isinstance(cn, str) or not (module is None or isinstance(module, str)):
            self.add("keras-object-invalid", f"a class_name or module that is not a string {where}")
            return
        shown = _show(cn, 60)
        if cn == "__lambda__":
            self.add(
                "keras-lambda-function",
                f"a serialized Python lambda (marshalled bytecode) {where}: it runs when loaded",
            )
            return
        if cn in _SPECIAL and module is None:
            return
        if cn in _LAMBDA_LAYERS:
            self.add("keras-lambda-layer", f"a {cn} layer {where}: {_lambda_kind(obj)}")
            return
        if cn in _CODE_LAYERS:
            self.add("keras-code-layer", f"a {cn} layer {where}: it {_CODE_LAYERS[cn]}")
            return
        registered = obj.get("registered_name")
        if cn == "function":
            fn = obj.get("config")
            allowed = KERAS_FUNCTIONS.get(module or "", _ALL_FUNCTIONS if module is None else None)
            if allowed is None or not isinstance(fn, str) or fn not in allowed:
                what = f"'{_show(str(module), 60)}.{_show(str(fn), 60)}'"
                inside = _keras_module(module)
                code = "keras-class-unknown" if inside else "keras-module-outside"
                self.add(code, f"a function {what} {where}: not a built-in Keras function")
                return
            if registered not in (None, fn):
                self._custom(registered, where)
            return
        if module is not None and not _keras_module(module):
            self.add(
                "keras-module-outside",
                f"'{_show(module, 60)}.{shown}' {where}: a module outside Keras (loading"
                " imports it)",
            )
            return
        allowed_classes = KERAS_CLASSES.get(module) if module is not None else _ALL_CLASSES
        if allowed_classes is None or cn not in allowed_classes:
            name = f"'{_show(module, 60)}.{shown}'" if module is not None else f"'{shown}'"
            self.add("keras-class-unknown", f"{name} {where}: not a built-in Keras object")
            return
        if registered not in (None, cn):
            self._custom(registered, where)

    def _custom(self, registered: object, where: str) -> None:
        self.add(
            "keras-custom-object",
            f"registered_name '{_show(str(registered), 80)}' {where}: a custom registered"
            " object (code outside Keras)",
        )

    def done(self) -> list[FormatFinding]:
        if self.skipped:
            self.findings.append(
                FormatFinding(
                    self.file,
                    self.format,
                    "keras-more-findings",
                    f"{self.skipped} more findings in the config not shown",
                    None,
                    self.member,
                )
            )
        return self.findings


def _keras_module(module: str | None) -> bool:
    return module is None or module == "keras" or module.startswith("keras.")


def _lambda_kind(obj: dict[str, Any]) -> str:
    config = obj.get("config")
    fn = config.get("function") if isinstance(config, dict) else None
    if isinstance(fn, dict) and fn.get("class_name") == "__lambda__":
        return "it holds marshalled Python bytecode, run when loaded"
    legacy = isinstance(config, dict) and config.get("function_type") == "lambda"
    if isinstance(fn, list) or legacy:
        return "it holds marshalled Python bytecode (legacy), run when loaded"
    if isinstance(fn, str):
        return f"it calls the function '{_show(fn, 80)}' by name"
    if isinstance(fn, dict):
        return f"it calls the function {_show(json.dumps(fn)[:200], 120)}"
    return "it runs code when called"


def check_keras_config(
    config: bytes, *, file: str, member: str | None, options: ScanOptions
) -> list[FormatFinding]:
    """A Keras ``config.json`` (from a .keras zip, or beside the weights)."""
    return _check_config(config, file, member, "keras")


def _check_config(config: bytes, file: str, member: str | None, fmt: str) -> list[FormatFinding]:
    c = _Config(file, member, fmt)
    if len(config) > MAX_CONFIG:
        c.add(
            "keras-config-too-large",
            f"a {len(config)}-byte config (more than {MAX_CONFIG}): not examined",
        )
        return c.done()
    value, problem = _load(config)
    if problem is not None:
        c.add("keras-config-invalid", f"the config is not valid JSON: {problem}")
        return c.done()
    if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
        c.add("keras-config-invalid", "the config is not a serialized Keras object")
    try:
        c.walk(value, "", 0)
    except _TooBig as e:
        c.add("keras-config-too-large", f"the config is {e}: not examined further")
    return c.done()


# ---------------------------------------------------------------- legacy HDF5


def check_hdf5(
    src: Source, detected: Detected, options: ScanOptions, name: str
) -> list[FormatFinding]:
    window = src.read(0, min(src.size, HDF5_WINDOW))
    at = window.find(b"model_config")
    if at < 0:
        note = (
            "an HDF5 file without a Keras model_config attribute in its first"
            f" {HDF5_WINDOW >> 20} MiB (weights only, or not a Keras model)"
        )
        return [FormatFinding(name, "hdf5", "keras-h5-weights", note, None, None, "info")]
    findings = [
        FormatFinding(
            name,
            "hdf5",
            "keras-h5-model",
            "a legacy Keras HDF5 model with a model_config: unsafe to load (Lambda layers"
            " in an .h5 model run code, safe mode or not)",
            at,
        )
    ]
    config = _heap_config(window)
    if config is not None:
        for f in _check_config(config, name, None, "hdf5"):
            findings.append(f)
    return findings


def _heap_config(window: bytes) -> bytes | None:
    """The first JSON model config among the global heap objects in ``window``."""
    start = 0
    for _ in range(64):
        at = window.find(b"GCOL", start)
        if at < 0:
            return None
        start = at + 4
        # GCOL, version 1, 3 reserved bytes, the collection's size (8 bytes, as
        # h5py writes with 8-byte lengths), then objects: index (2), references
        # (2), reserved (4), size (8), the data padded to 8 bytes.
        if window[at + 4 : at + 5] != b"\x01":
            continue
        end = min(len(window), at + int.from_bytes(window[at + 8 : at + 16], "little"))
        pos = at + 16
        while pos + 16 <= end:
            index = int.from_bytes(window[pos : pos + 2], "little")
            size = int.from_bytes(window[pos + 8 : pos + 16], "little")
            if index == 0 or size > end - pos - 16:
                break
            data = window[pos + 16 : pos + 16 + size]
            if data.lstrip()[:1] == b"{" and b'"class_name"' in data:
                return data
            pos += 16 + (size + 7) // 8 * 8
    return None
