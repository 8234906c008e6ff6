"""MVGFormer, one readable module per component (see chapters 3-6).

``MVGFormer(config)`` is the model; ``segmentation_loss`` is eq. 9. The parts: ``views`` (XY/YZ/XZ),
``context`` (conv encoder), ``graph`` (k-means, spectral, MinCutPool), ``embed`` (tokens and positions),
``attention`` (graph-guided transformer), ``decoders`` (MLP, MF, P3DA), ``fusion``, ``vsl``, ``losses``,
``regularizers`` (Table 9's extra loss terms), ``diversity`` (Table 14's CosSim and FDS), ``vsl_checks``.
"""

from mvgtutor.model.attention import TransformerEncoder
from mvgtutor.model.context import ContextEncoder
from mvgtutor.model.decoders import MFDecoder, MLPDecoder, P3DADecoder, make_decoder
from mvgtutor.model.embed import PatchEmbed, PositionEncoding
from mvgtutor.model.fusion import ViewFusion
from mvgtutor.model.diversity import cosine_similarity, feature_diversity, view_diversity
from mvgtutor.model.graph import Graph, build_graph, kmeans, lloyd
from mvgtutor.model.losses import segmentation_loss
from mvgtutor.model.mvgformer import EncoderOutput, MVGFormer
from mvgtutor.model.views import VIEWS, from_view, to_view, view_keys
from mvgtutor.model.vsl import ViewMaskedSSL

__all__ = [
    "VIEWS", "ContextEncoder", "EncoderOutput", "Graph", "MFDecoder", "MLPDecoder", "MVGFormer", "P3DADecoder",
    "PatchEmbed", "PositionEncoding", "TransformerEncoder", "ViewFusion", "ViewMaskedSSL", "build_graph",
    "cosine_similarity", "feature_diversity", "from_view", "kmeans", "lloyd", "make_decoder", "segmentation_loss",
    "to_view", "view_diversity", "view_keys",
]
