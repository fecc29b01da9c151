"""The BOLT11 specification's example invoices (public test data), with their stated values.

Sources, all from ``11-payment-encoding.md`` of the Lightning specification (lightning/bolts):

- ``VALID`` and ``INVALID``: the "Examples" and "Examples of Invalid Invoices" sections of the
  current specification, copied from lightning/bolts at commit 27af3bd1c0db. The three examples
  upstream added after that commit ("with fallback (P2TR) address", "Public-key recovery with
  high-S signature", and the invalid "Missing required `s` field" and "Non canonical signature
  (high-S) with 'n' field defined") are copied from the current text as reproduced in the test
  suites of ekzyis/lnpilot (``lightning/bolt11``) and electrum's BOLT11 compliance audit; their
  bech32 checksums confirm the copies.
- ``LEGACY_VALID`` and ``LEGACY_INVALID``: the same sections at lightning/bolts commit 0028ac9bf455,
  an older revision whose first ten examples have no ``s`` (payment secret) field and whose
  feature examples use the odd bits 9 and 15. The reference ``bolt11`` package refuses invoices
  without a payment secret, and so does the current specification.

Every example is signed with ``PRIVATE_KEY``; the values stated beside each example in the
specification are written out here so the decoders are checked against the spec itself, not only
against each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PRIVATE_KEY = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"
PAYEE = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"
PAYMENT_HASH = "0001020304050607080900010203040506070809000102030405060708090102"
PAYMENT_SECRET = "1111111111111111111111111111111111111111111111111111111111111111"
TIMESTAMP = 1496314658
LONG_DESCRIPTION = (
    "One piece of chocolate cake, one icecream cone, one pickle, one slice of swiss cheese, one"
    " slice of salami, one lollypop, one piece of cherry pie, one sausage, one cupcake, and one"
    " slice of watermelon"
)
LONG_DESCRIPTION_HASH = hashlib.sha256(LONG_DESCRIPTION.encode()).hexdigest()
HIGH_S_RECOVERED_PAYEE = "02d0139ce7427d6dfffd26a326c18be754ef1e64672b42694ba5b23ef6e6e7803d"
PICO_PAYMENT_HASH = "462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f"
PICO_DESCRIPTION = (
    'Blockstream Store: 88.85 USD for Blockstream Ledger Nano S x 1, "Back In My Day" Sticker x 2,'
    ' "I Got Lightning Working" Sticker x 2 and 1 more items'
)

# Feature bitmasks as the examples state them.
F_8_14 = (1 << 8) | (1 << 14)
F_8_14_99 = F_8_14 | (1 << 99)
F_8_14_48 = F_8_14 | (1 << 48)
F_9_15_99 = (1 << 9) | (1 << 15) | (1 << 99)


@dataclass(frozen=True)
class ValidVector:
    """A valid example and the values the specification states for it."""

    name: str
    invoice: str
    currency: str
    amount_msat: int | None
    description: str | None
    description_hash: str | None = None
    payment_secret: str | None = PAYMENT_SECRET
    features: int | None = F_8_14
    payment_hash: str = PAYMENT_HASH
    timestamp: int = TIMESTAMP
    expiry: int = 3600
    min_final_cltv_expiry: int = 18
    payee: str = PAYEE


@dataclass(frozen=True)
class InvalidVector:
    """An invalid example and the words our refusal must contain."""

    name: str
    invoice: str
    reason: str


VALID = [
    ValidVector(
        "donation of any amount",
        "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqq"
        "qsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs"
        "8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt"
        "52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql",
        "bc",
        None,
        "Please consider supporting this project",
    ),
    ValidVector(
        "$3 for a cup of coffee within one minute",
        "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqw"
        "zqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy"
        "8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vg"
        "pfna3rh",
        "bc",
        250_000_000,
        "1 cup coffee",
        expiry=60,
    ),
    ValidVector(
        "0.0025 BTC for a cup of nonsense (UTF-8 description)",
        "lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqw"
        "zqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4eyqc7d8d0xqzpu9qrsgqhtj"
        "pauu9ur7fw2thcl4y9vfvh4m9wlfyz2gem29g5ghe2aak2pm3ps8fdhtceqsaagty2vph7utlgj48u0ged6a337a"
        "ewvraedendscp573dxr",
        "bc",
        250_000_000,
        "ナンセンス 1杯",
        expiry=60,
    ),
    ValidVector(
        "$24 for an entire list of things (hashed)",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2a"
        "hrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6cxga50aj6txm9rxrydzd06dfeawfk6swup"
        "vz4erwnyutnjq7x39ymw6j38gp7ynn44",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "testnet, fallback address mk2QpYatsKicvFVuTAQLBryyccRXMUaGHP",
        "lntb20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqf"
        "qypqfpp3x9et2e20v6pu37c5d9vax37wxq72un989qrsgqdj545axuxtnfemtpwkc45hx9d2ft7x04mt8q7y6t0k"
        "2dge9e7h8kpy9p34ytyslj3yu569aalz2xdk8xkd7ltxqld94u8h2esmsmacgpghe9k8",
        "tb",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "mainnet, fallback 1RustyRX2oai4EYYDpQGWvEL62BBGqN9T and routing info",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2a"
        "hrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2nflc7jtzrcazrra7wwgzxqc8u7754cdlpf"
        "rmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fvg0r5gv0heeeqgcrqlnm6jhphu9y00rrhy"
        "4grqszsvpcgpy9qqqqqqgqqqqq7qqzq9qrsgqdfjcdk6w3ak5pca9hwfwfh63zrrz06wwfya0ydlzpgzxkn5xags"
        "qz7x9j4jwe7yj7vaf2k9lqsdk45kts2fd0fkr28am0u4w95tt2nsq76cqw0",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "mainnet, fallback (P2SH) 3EktnHQD7RiAE6uzMj2ZifT9YgRrkSgzQX",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqf"
        "qypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z99qrsgqz6qsgww34xlatfj6e3sngrwfy3ytkt29d2qttr8qz2"
        "mnedfqysuqypgqex4haa2h8fx3wnypranf3pdwyluftwe680jjcfp438u82xqphf75ym",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "mainnet, fallback (P2WPKH) bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqf"
        "qypqfppqw508d6qejxtdg4y5r3zarvary0c5xw7k9qrsgqt29a0wturnys2hhxpner2e3plp6jyj8qx7548zr2z7"
        "ptgjjc7hljm98xhjym0dg52sdrvqamxdezkmqg4gdrvwwnf0kv2jdfnl4xatsqmrnsse",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "mainnet, fallback (P2WSH) bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqf"
        "qypqfp4qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q9qrsgq9vlvyj8cqvq6ggvpwd53jn"
        "cp9nwc47xlrsnenq2zp70fq83qlgesn4u3uyf4tesfkkwwfg3qs54qe426hp3tz7z6sweqdjg05axsrjqp9yrrwc",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "mainnet, fallback (P2TR) bc1pptdvg0d2nj99568qn6ssdy4cygnwuxgw2ukmnwgwz7jpqjz2kszse2s3lm",
        "lnbc20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2a"
        "hrqsfp4pptdvg0d2nj99568qn6ssdy4cygnwuxgw2ukmnwgwz7jpqjz2kszs9qrsgqy606dznq28exnydt2r4c29"
        "y56xjtn3sk4mhgjtl4pg2y4ar3249rq4ajlmj9jy8zvlzw7cr8mggqzm842xfr0v72rswzq9xvr4hknfsqwmn6xd",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
    ),
    ValidVector(
        "0.00967878534 BTC within one week, amount in pico-BTC",
        "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cm"
        "twd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgr"
        "cyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7un"
        "td9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg"
        "3zyg3zyg3zyg3zyg3zygsxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4jyxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuw"
        "z87fcqqeuqqqyqqqqlgqqqqn3qq9q9qrsgqrvgkpnmps664wgkp43l22qsgdw4ve24aca4nymnxddlnp8vh9v2sd"
        "xlu5ywdxefsfvm0fq3sesf08uf6q9a2ke0hc9j6z6wlxg5z5kqpu2v9wz",
        "bc",
        967_878_534,
        PICO_DESCRIPTION,
        payment_hash=PICO_PAYMENT_HASH,
        timestamp=1572468703,
        expiry=604800,
        min_final_cltv_expiry=10,
    ),
    ValidVector(
        "$30 for coffee beans, features 8, 14 and 99",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2a25d"
        "xl5hrntdtn6zvydt7d66hyzsyhqs4wdynavys42xgl6sgx9c4g7me86a27t07mdtfry458rtjr0v92cnmswpsjsc"
        "gt2vcse3sgpz3uapa",
        "bc",
        2_500_000_000,
        "coffee beans",
        features=F_8_14_99,
    ),
    ValidVector(
        "same, all upper case",
        "LNBC25M1PVJLUEZPP5QQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQQQSYQCYQ5RQWZQFQYPQDQ5VDHKVEN9V5SXYET"
        "PDEESSP5ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYG3ZYGS9Q5SQQQQQQQQQQQQQQQQSGQ2A25D"
        "XL5HRNTDTN6ZVYDT7D66HYZSYHQS4WDYNAVYS42XGL6SGX9C4G7ME86A27T07MDTFRY458RTJR0V92CNMSWPSJSC"
        "GT2VCSE3SGPZ3UAPA",
        "bc",
        2_500_000_000,
        "coffee beans",
        features=F_8_14_99,
    ),
    ValidVector(
        "same, with fields which must be ignored",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqqsgq2qrqq"
        "qfppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnpkqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqz599y53s3ujmcfjp5xrdap68qxymkqphwsexhmhr8wdz5usdz"
        "kzrse33chw6dlp3jhuhge9ley7j2ayx36kawe7kmgg8sv5ugdyusdcqzn8z9x",
        "bc",
        2_500_000_000,
        "coffee beans",
        features=F_8_14_99,
    ),
    ValidVector(
        "0.01 BTC with payment metadata 0x01fafaf0",
        "lnbc10m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdp9wpshjmt9de6zqmt"
        "9w3skgct5vysxjmnnd9jx2mq8q8a04uqsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9"
        "q2gqqqqqqsgq7hf8he7ecf7n4ffphs6awl9t6676rrclv9ckg3d3ncn7fct63p6s365duk5wrk202cfy3aj5xnnp"
        "5gs3vrdvruverwwq7yzhkf5a3xqpd05wjc",
        "bc",
        1_000_000_000,
        "payment metadata inside",
        features=F_8_14_48,
    ),
    ValidVector(
        "public-key recovery with high-S signature",
        "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqq"
        "qsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs"
        "8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap2r09nt4ndd0unm3z9u5"
        "t48y6ucv4r5sg7lk98c77ctvjczkspk5qprc90gx",
        "bc",
        None,
        "Please consider supporting this project",
        # The example negates the donation signature's s but keeps its recovery id (1), so
        # recovery yields another key than PAYEE (recovery id 0 would give PAYEE back). The spec
        # only says it must decode; bolt11.decode recovers this same key.
        payee=HIGH_S_RECOVERED_PAYEE,
    ),
]

INVALID = [
    InvalidVector(
        "same, but adding invalid unknown feature 100",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqqsgqtqyx"
        "5vggfcsll4wu246hz02kp85x4katwsk9639we5n5yngc3yhqkm35jnjw4len8vrnqnf5ejh0mzj9n3vz2px97eve"
        "ktfm2l6wqccp3y7372",
        "unknown feature bit 100",
    ),
    InvalidVector(
        "bech32 checksum is invalid",
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9"
        "wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvya"
        "kky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrnt",
        "checksum",
    ),
    InvalidVector(
        "malformed bech32 string (no 1)",
        "pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9wlrswe78q4"
        "eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvyakky2zr4cus"
        "d45tftc9c5fh0nnqpnl2jfll544esqchsrny",
        "separator",
    ),
    InvalidVector(
        "malformed bech32 string (mixed case)",
        "LNBC2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9"
        "wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvya"
        "kky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny",
        "mixed case",
    ),
    InvalidVector(
        "signature is not recoverable",
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7"
        "enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqwgt7mcn5yqw3yx0"
        "w94pswkpq6j9uh6xfqqqtsk4tnarugeektd4hg5975x9am52rz4qskukxdmjemg92vvqz8nvmsye63r5ykel43pg"
        "z7zq0g2",
        "signature",
    ),
    InvalidVector(
        "string is too short",
        "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd"
        "5kgetjypeh2ursdae8g6na6hlh",
        "too short",
    ),
    InvalidVector(
        "invalid multiplier",
        "lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7"
        "enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqrrzc4cvfue4zp3h"
        "ggxp47ag7xnrlr8vgcmkjxk3j5jqethnumgkpqp23z9jclu3v0a7e0aruz366e9wqdykw6dxhdzcjjhldxq0w6wg"
        "qcnu43j",
        "multiplier",
    ),
    InvalidVector(
        "invalid sub-millisatoshi precision",
        "lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxat"
        "syp3k7enxv4jsxqzpusp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgq0lzc236j9"
        "6a95uv0m3umg28gclm5lqxtqqwk32uuk4k6673k6n5kfvx3d2h8s295fad45fdhmusm8sjudfhlf6dcsxmfvkeyw"
        "mjdkxcp99202x",
        "sub-millisatoshi",
    ),
    InvalidVector(
        "missing required s field",
        "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqs9qrsgq7ea976txfraylvgzuxs8kgcw23ezlrszfnh8r6qtfpr6c"
        "xga50aj6txm9rxrydzd06dfeawfk6swupvz4erwnyutnjq7x39ymw6j38gp49qdkj",
        "no valid s field",
    ),
    InvalidVector(
        "non canonical signature (high-S) with n field defined",
        "lnbc25m1p70xwfzpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmm"
        "wwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaqnp4q0n326hr8v9zprg8gsvezcch06gfaqqhde2aj"
        "730yg0durunfhv66sp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9qrsgqsp5zyg3zyg3"
        "zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygsp5cfzp9ugllvk03rltd6hvndxj26ux6gcxc5azyxk060"
        "rj9tzghct5zvjlps76gx8wpq5yuu79688k8gnm2c0al6v608s96l0xzrrlqqwnzxmu",
        "n field",
    ),
]

LEGACY_VALID = [
    ValidVector(
        "legacy: donation of any amount",
        "lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd"
        "5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq8rkx3yf5tcsyz3d73gafnh3cax9rn449d9p5uxz9ezh"
        "hypd0elx87sjle52x86fux2ypatgddc6k63n7erqz25le42c4u4ecky03ylcqca784w",
        "bc",
        None,
        "Please consider supporting this project",
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: $3 for a cup of coffee within one minute",
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7"
        "enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw"
        "97j25emudupq63nyw24cg27h2rspfj9srp",
        "bc",
        250_000_000,
        "1 cup coffee",
        payment_secret=None,
        features=None,
        expiry=60,
    ),
    ValidVector(
        "legacy: 0.0025 BTC for a cup of nonsense",
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpquwpc4curk03c9"
        "wlrswe78q4eyqc7d8d0xqzpuyk0sg5g70me25alkluzd2x62aysf2pyy8edtjeevuv4p2d5p76r4zkmneet7uvya"
        "kky2zr4cusd45tftc9c5fh0nnqpnl2jfll544esqchsrny",
        "bc",
        250_000_000,
        "ナンセンス 1杯",
        payment_secret=None,
        features=None,
        expiry=60,
    ),
    ValidVector(
        "legacy: $24 for an entire list of things (hashed)",
        "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqscc6gd6ql3jrc5yzme8v4ntcewwz5cnw92tz0pc8qcuufvq7khhr"
        "8wpald05e92xw006sq94mg8v2ndf4sefvf9sygkshp5zfem29trqq2yxxz7",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: testnet, fallback address",
        "lntb20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un98kmzzhznpurw9sgl"
        "2v0nklu2g4d0keph5t7tj9tcqd8rexnd07ux4uv2cjvcqwaxgj7v4uwn5wmypjd5n69z2xm3xgksg28nwht7f6zs"
        "pwp3f9t",
        "tb",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: mainnet, fallback and routing info",
        "lnbc20m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqhp58yjmdan79s6qqdh"
        "dzgynm4zwqd5d7xmw5fk98klysy043l2ahrqsfpp3qjmp7lwpagxun9pygexvgpjdc4jdj85fr9yq20q82gphp2n"
        "flc7jtzrcazrra7wwgzxqc8u7754cdlpfrmccae92qgzqvzq2ps8pqqqqqqpqqqqq9qqqvpeuqafqxu92d8lr6fv"
        "g0r5gv0heeeqgcrqlnm6jhphu9y00rrhy4grqszsvpcgpy9qqqqqqgqqqqq7qqzqj9n4evl6mr5aj9f58zp6fyjz"
        "up6ywn3x6sk8akg5v4tgn2q8g4fhx05wf6juaxu9760yp46454gpg5mtzgerlzezqcqvjnhjh8z3g2qqdhhwkj",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: mainnet, fallback (P2SH)",
        "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppj3a24vwu6r8ejrss3axul8rxldph2q7z9kmrgvr7xlaqm47a"
        "pw3d48zm203kzcq357a4ls9al2ea73r8jcceyjtya6fu5wzzpe50zrge6ulk4nvjcpxlekvmxl6qcs9j3tz0469g"
        "q5g658y",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: mainnet, fallback (P2WPKH)",
        "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfppqw508d6qejxtdg4y5r3zarvary0c5xw7kepvrhrm9s57hejg"
        "0p662ur5j5cr03890fa7k2pypgttmh4897d3raaq85a293e9jpuqwl0rnfuwzam7yr8e690nd2ypcq9hlkdwdvyc"
        "qa0qza8",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: mainnet, fallback (P2WSH)",
        "lnbc20m1pvjluezhp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzq"
        "fqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfp4qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpy"
        "sxf3q28j0v3rwgy9pvjnd48ee2pl8xrpxysd5g44td63g6xcjcu003j3qe8878hluqlvl3km8rm92f5stamd3jw7"
        "63n3hck0ct7p8wwj463cql26ava",
        "bc",
        2_000_000_000,
        None,
        LONG_DESCRIPTION_HASH,
        payment_secret=None,
        features=None,
    ),
    ValidVector(
        "legacy: amount in pico-BTC",
        "lnbc9678785340p1pwmna7lpp5gc3xfm08u9qy06djf8dfflhugl6p7lgza6dsjxq454gxhj9t7a0sd8dgfkx7cm"
        "twd68yetpd5s9xar0wfjn5gpc8qhrsdfq24f5ggrxdaezqsnvda3kkum5wfjkzmfqf3jkgem9wgsyuctwdus9xgr"
        "cyqcjcgpzgfskx6eqf9hzqnteypzxz7fzypfhg6trddjhygrcyqezcgpzfysywmm5ypxxjemgw3hxjmn8yptk7un"
        "td9hxwg3q2d6xjcmtv4ezq7pqxgsxzmnyyqcjqmt0wfjjq6t5v4khxxqyjw5qcqp2rzjq0gxwkzc8w6323m55m4j"
        "yxcjwmy7stt9hwkwe2qxmy8zpsgg7jcuwz87fcqqeuqqqyqqqqlgqqqqn3qq9qn07ytgrxxzad9hc4xt3mawjjt8"
        "znfv8xzscs7007v9gh9j569lencxa8xeujzkxs0uamak9aln6ez02uunw6rd2ht2sqe4hz8thcdagpleym0j",
        "bc",
        967_878_534,
        PICO_DESCRIPTION,
        payment_secret=None,
        features=None,
        payment_hash=PICO_PAYMENT_HASH,
        timestamp=1572468703,
        expiry=604800,
        min_final_cltv_expiry=10,
    ),
    ValidVector(
        "legacy: coffee beans, features 9, 15 and 99",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq67gye"
        "39hfg3zd8rgc80k32tvy9xk2xunwm5lzexnvpx6fd77en8qaq424dxgt56cag2dpt359k3ssyhetktkpqh24jqnj"
        "yw6uqd08sgptq44qu",
        "bc",
        2_500_000_000,
        "coffee beans",
        features=F_9_15_99,
    ),
    ValidVector(
        "legacy: same, with fields which must be ignored",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q5sqqqqqqqqqqqqqqqpqsq2qrqq"
        "qfppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqppnqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqpp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqhpnqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqhp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqspnqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqsp4qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqnp5qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnpkqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq2jxxfsnucm4jf4zwtznpaxphce606fvhvje5x7d4gw7n73994"
        "hgs7nteqvenq8a4ml8aqtchv5d9pf7l558889hp4yyrqv6a7zpq9fgpskqhza",
        "bc",
        2_500_000_000,
        "coffee beans",
        features=F_9_15_99,
    ),
]

LEGACY_INVALID = [
    InvalidVector(
        "legacy: same, but adding invalid unknown feature 100",
        "lnbc25m1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5vdhkven9v5sxyet"
        "pdeessp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygs9q4psqqqqqqqqqqqqqqqpqsqq40w"
        "a3khl49yue3zsgm26jrepqr2eghqlx86rttutve3ugd05em86nsefzh4pfurpd9ek9w2vp95zxqnfe2u7ckudyah"
        "sa52q66tgzcp6t2dyk",
        "unknown feature bit 100",
    ),
    InvalidVector(
        "legacy: signature is not recoverable",
        "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7"
        "enxv4jsxqzpuaxtrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw"
        "97j25emudupq63nyw24cg27h2rspk28uwq",
        "signature",
    ),
    InvalidVector(
        "legacy: invalid multiplier",
        "lnbc2500x1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7"
        "enxv4jsxqzpujr6jxr9gq9pv6g46y7d20jfkegkg4gljz2ea2a3m9lmvvr95tq2s0kvu70u3axgelz3kyvtp2yww"
        "t0y8hkx2869zq5dll9nelr83zzqqpgl2zg",
        "multiplier",
    ),
    InvalidVector(
        "legacy: invalid sub-millisatoshi precision",
        "lnbc2500000001p1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxat"
        "syp3k7enxv4jsxqzpu7hqtk93pkf7sw55rdv4k9z2vj050rxdr6za9ekfs3nlt5lr89jqpdmxsmlj9urqumg0h9w"
        "zpqecw7th56tdms40p2ny9q4ddvjsedzcplva53s",
        "sub-millisatoshi",
    ),
]
