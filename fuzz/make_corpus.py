#!/usr/bin/env python3
"""Regenerates the seed corpus of the fuzz targets: fuzz/corpus/<target>/<name>.

Every seed is a small valid input (the fuzzer mutates from there). Needs Pillow and torch (the
Debian python3-torch interpreter, /usr/bin/python3) for the JPEG/PNG and pytorch_model.bin seeds;
everything else is written by hand. Run from anywhere:  /usr/bin/python3 fuzz/make_corpus.py
"""
import io
import zipfile
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def fnv1a64(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


REPORT = ("FINAL REPORT\nEXAMINATION: CHEST (PA AND LAT)\nINDICATION: ___ with cough.\n\n"
          "FINDINGS: 1. Mild edema, 2.5 cm. 2. No effusion.\nHeart size is normal.\n\n"
          "IMPRESSION:\nNo acute cardiopulmonary process. Dr. Smith e.g. approx. 3 mm.\n")
VOCAB = "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "pl", "##eur", "##al",
                   "effusion", "##s", ".", ",", "é", "中", "heart"]) + "\n"


def text_seeds():
    put("fuzz_vocab", "bert_like.txt", VOCAB)
    put("fuzz_vocab", "crlf.txt", VOCAB.replace("\n", "\r\n"))
    put("fuzz_wordpiece", "report", b"\x01" + REPORT.encode())
    put("fuzz_wordpiece", "mixed", b"\x17" + "Héllo, WORLD! [MASK] 中文 effusions".encode() + b"\xff\xfe ___")
    put("fuzz_report", "mimic", REPORT)
    put("fuzz_report", "combined", "FINDINGS AND IMPRESSION: Lungs clear.\r\nWET READ: none\u00a0ok")
    put("fuzz_report", "unstructured", "Heart size normal. No effusion.\u2028New line.")
    put("fuzz_sentences", "report", b"\x03" + REPORT.encode())
    put("fuzz_sentences", "list", b"\x01" + "1. Edema 2. Effusion\n- item\n* \u2022 x. \"Quoted.\" (Yes.)".encode())


def csv_seeds():
    put("fuzz_csv", "quoted", 'Path,Text,"Note, quoted"\r\na.png,"he said ""hi""\nnext",1\nb.png,,\n')
    put("fuzz_csv", "bom", "\ufeffa,b\n1,2,3\n\n4\n")
    meta = ("dicom_id,subject_id,study_id,ViewPosition\n"
            "d1,10000032,50414267,PA\nd2,10000032,50414267,LATERAL\n")
    split = "dicom_id,study_id,subject_id,split\nd1,50414267,10000032,train\nd2,50414267,10000032,train\n"
    sep = "\n=====\n"
    put("fuzz_datasets", "mimic", "\x00" + meta + sep + split)
    chexpert = ("Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Atelectasis,Cardiomegaly,Consolidation,"
                "Edema,Pleural Effusion\n"
                "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,Female,68,Frontal,AP,"
                "1.0,,-1.0,0.0,1.0,\n")
    put("fuzz_datasets", "chexpert", "\x01" + chexpert)
    put("fuzz_datasets", "rsna", "\x02patientId,x,y,width,height,Target\n"
        "0004cfab-14fd,,,,,0\n00436515-870c,264.0,152.0,213.0,379.0,1\n00436515-870c,562,152,256,453,1\n")
    put("fuzz_datasets", "covidx", "\x03" + "1 a.png COVID-19 cohen\n2 b.jpg normal rsna\n3 c.png pneumonia x\n")
    put("fuzz_datasets", "mura", "\x04" + "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image1.png\n"
        + sep + "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/,1\n")
    cats = ["Atelectasis", "Cardiomegaly", "Edema", "Fracture", "Pleural Effusion", "Pneumonia",
            "Pneumothorax", "No Finding"]
    cand = "Path," + ",".join(cats) + "\nCheXpert-v1.0-small/valid/p1/s1/view1.jpg,1,0,0,0,0,0,0,0\n"
    put("fuzz_datasets", "retrieval", "\x05" + cand + sep + "Variable,Text\nEdema,Mild pulmonary edema.\n")
    put("fuzz_datasets", "pairs", "\x06image,text,study,patient\na.png;b.png,\"FINDINGS: No effusion. "
        "IMPRESSION: Normal heart size.\",s1,p1\n")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, depth, color, raw_rows):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw_rows)) + png_chunk(b"IEND", b""))


def dicom(rows, cols, bits, pixels, photometric=b"MONOCHROME2", transfer=b"1.2.840.10008.1.2.1"):
    def el(group, elem, vr, value):
        if len(value) % 2:
            value += b"\x00" if vr in (b"UI", b"OB") else b" "
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            return struct.pack("<HH", group, elem) + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value
    meta = el(0x0002, 0x0001, b"OB", b"\x00\x01") + el(0x0002, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.1")
    meta += el(0x0002, 0x0003, b"UI", b"1.2.3.4") + el(0x0002, 0x0010, b"UI", transfer)
    group_len = el(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta)))
    ds = el(0x0008, 0x0060, b"CS", b"CR")
    ds += el(0x0028, 0x0002, b"US", struct.pack("<H", 1))
    ds += el(0x0028, 0x0004, b"CS", photometric)
    ds += el(0x0028, 0x0010, b"US", struct.pack("<H", rows))
    ds += el(0x0028, 0x0011, b"US", struct.pack("<H", cols))
    ds += el(0x0028, 0x0100, b"US", struct.pack("<H", bits))
    ds += el(0x0028, 0x0101, b"US", struct.pack("<H", bits))
    ds += el(0x0028, 0x0102, b"US", struct.pack("<H", bits - 1))
    ds += el(0x0028, 0x0103, b"US", struct.pack("<H", 0))
    ds += el(0x0028, 0x1050, b"DS", b"128")
    ds += el(0x0028, 0x1051, b"DS", b"256")
    ds += el(0x7FE0, 0x0010, b"OW" if bits == 16 else b"OB", pixels)
    return b"\x00" * 128 + b"DICM" + group_len + meta + ds


def image_seeds():
    from PIL import Image  # Pillow: the JPEG seeds need a real encoder

    put("fuzz_image", "gray8.png", b"\x00" + png(4, 3, 8, 0, b"".join(b"\x00" + bytes(range(4)) for _ in range(3))))
    put("fuzz_image", "rgb16.png", b"\x05" + png(2, 2, 16, 2, b"".join(b"\x00" + bytes(12) for _ in range(2))))
    put("fuzz_image", "palette.png", b"\x01" + png(2, 1, 1, 3, b"\x00\x80")[:33] +
        png_chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff") + png(2, 1, 1, 3, b"\x00\x80")[33:])
    for mode, name in (("L", "gray.jpg"), ("RGB", "rgb.jpg")):
        buf = io.BytesIO()
        Image.new(mode, (8, 8), 128).save(buf, format="JPEG", quality=50)
        put("fuzz_image", name, b"\x00" + buf.getvalue())
    buf = io.BytesIO()
    Image.new("L", (16, 16), 200).save(buf, format="JPEG", progressive=True)
    put("fuzz_image", "progressive.jpg", b"\x08" + buf.getvalue())
    put("fuzz_image", "mono2_16.dcm", b"\x00" + dicom(2, 3, 16, struct.pack("<6H", 0, 100, 200, 300, 400, 4095)))
    put("fuzz_image", "mono1_8.dcm", b"\x10" + dicom(2, 2, 8, bytes([0, 50, 100, 255]), b"MONOCHROME1"))


def model_seeds():
    header = {"__metadata__": {"format": "pt"},
              "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
              "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}
    h = json.dumps(header).encode()
    put("fuzz_safetensors", "small.safetensors", struct.pack("<Q", len(h)) + h + bytes(24))
    h = json.dumps({"e": {"dtype": "BF16", "shape": [0], "data_offsets": [0, 0]}}).encode()
    put("fuzz_safetensors", "empty_tensor.safetensors", struct.pack("<Q", len(h)) + h)
    import torch
    for name, obj in (("state_dict.bin", {"w": torch.zeros(2, 2), "n": torch.tensor([1], dtype=torch.int64)}),
                      ("wrapped.pth", {"state_dict": {"fc.weight": torch.ones(1, 2, dtype=torch.float16)}})):
        buf = io.BytesIO()
        torch.save(obj, buf)
        put("fuzz_torch_file", name, b"\x01" + buf.getvalue())
    # Bare pickles for the wrapped mode (storage keys "0".."3" exist in the fuzz target's archive).
    for name, obj in (("pickle_dict", {"w": torch.ones(2, 3)[:, 1:]}),
                      ("pickle_nested", {"state_dict": {"b": torch.zeros(4, dtype=torch.float16)}})):
        buf = io.BytesIO()
        torch.save(obj, buf)

        with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
            pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
            put("fuzz_torch_file", name, b"\x00" + z.read(pkl))
    payload = b"payload of a checkpoint"
    good = payload + b"CVRTCKP1" + struct.pack("<QQ", len(payload), fnv1a64(payload))
    put("fuzz_checkpoint", "good_both", good + b"=====" + good)
    put("fuzz_checkpoint", "torn_newest", good[:-3] + b"=====" + good)


def config_seeds():
    put("fuzz_config", "flat.json", "\x00" + json.dumps({"out": "runs/x", "max-steps": 2000, "fractions": [0.01, 0.1, 1],
                                                "amp": True, "lr": 1e-4}))
    put("fuzz_config", "nested.json", "\x00" + json.dumps({"pretrain": {"out": "r", "seed": 3}, "batch-size": 32}))
    put("fuzz_config", "flat.yaml", "\x01out: runs/x\nmax-steps: 2000\nfractions: [0.01, 0.1, 1]\namp: true\n")
    put("fuzz_config", "nested.yaml", "\x01pretrain:\n  out: r\n  seed: 3\nbase: &b {lr: 1}\nother: *b\n")


if __name__ == "__main__":
    text_seeds()
    csv_seeds()
    image_seeds()
    model_seeds()
    config_seeds()
