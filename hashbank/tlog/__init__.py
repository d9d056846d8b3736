"""Transparency log primitives: leaf encoding, RFC 6962 Merkle tree, checkpoints, signed notes.

A pure package (stdlib + ``cryptography`` only, no Django) shared by the server and the partner
sync client. Everything here is a wire format: see ``docs/LOG_FORMAT.md`` for the
specification, which this package implements exactly.

* :mod:`.leaf`: one canonical ASCII line per log entry (:func:`encode_add`, salted,
  :func:`encode_remove`, :func:`decode_leaf`). Decoding accepts exactly what the encoders
  produce.
* :mod:`.merkle`: RFC 6962 / RFC 9162 Merkle tree hashing (:func:`leaf_hash`,
  :func:`node_hash`, :func:`root_from_leaf_hashes`), the compact right edge
  (:class:`RightEdge`), and inclusion / consistency proofs built from stored *perfect-subtree
  nodes* ``(level, index)``.
* :mod:`.checkpoint`: checkpoints (C2SP ``tlog-checkpoint``).
* :mod:`.note`: signed notes (C2SP ``signed-note``, Ed25519), compatible with Go's
  ``golang.org/x/mod/sumdb/note``, and the text forms of verifier and private keys.

Callers use the names below as ``tlog.X``; the modules are how the code is laid out, not a
second API.
"""

from hashbank.tlog.checkpoint import (
    Checkpoint,
    CheckpointError,
    format_checkpoint,
    parse_checkpoint,
)
from hashbank.tlog.leaf import (
    REMOVE_REASONS,
    SALT_SIZE,
    Leaf,
    LeafError,
    check_value,
    decode_leaf,
    encode_add,
    encode_remove,
)
from hashbank.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    ProofError,
    RightEdge,
    consistency_proof,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    right_edge_node_ids,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from hashbank.tlog.note import (
    MAX_NOTE_SIGNATURES,
    MAX_NOTE_SIZE,
    KeyFormatError,
    NoteError,
    NoteSigner,
    NoteVerifier,
    OpenedNote,
    UnknownKeyError,
    generate_private_key,
    key_id,
    open_note,
    parse_vkey,
    private_key_from_text,
    private_key_to_text,
    sign_note,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_NOTE_SIGNATURES",
    "MAX_NOTE_SIZE",
    "REMOVE_REASONS",
    "SALT_SIZE",
    "Checkpoint",
    "CheckpointError",
    "KeyFormatError",
    "Leaf",
    "LeafError",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "OpenedNote",
    "ProofError",
    "RightEdge",
    "UnknownKeyError",
    "check_value",
    "consistency_proof",
    "consistency_proof_nodes",
    "decode_leaf",
    "encode_add",
    "encode_remove",
    "format_checkpoint",
    "generate_private_key",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_vkey",
    "private_key_from_text",
    "private_key_to_text",
    "right_edge_node_ids",
    "root_from_leaf_hashes",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]
