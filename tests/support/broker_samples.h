// tests/support/broker_samples.h
//
// Sample frames of reference/broker-protocols.md, shared by the codec tests
// and their robustness tests: KIS §1.12 (records, control replies, the AES
// vector), Kiwoom §2.9 (the 0B trade entry), Settrade §3.6 (payloads).
#pragma once

#include <string_view>

namespace examples::samples {

// --- KIS
// ------------------------------------------------------------------------

// One H0STCNT0 record: 46 fields.
inline constexpr std::string_view kKisTradeRecord =
    "005930^093015^71500^2^500^0.70^71320.55^71000^71700^70900^71600^71500^"
    "120^3521047^251234567000^8123^9456^1333^105.32^1650234^1738901^1^51.30^"
    "45.12^090001^2^500^091230^5^-200^090512^2^600^20260715^20^N^15230^20110^"
    "612345^701234^0.60^3012345^116.89^0^0^71500";

// One H0STASP0 record: 59 fields (live frames append 3 more).
inline constexpr std::string_view kKisBookRecord =
    "005930^093015^0^71600^71700^71800^71900^72000^72100^72200^72300^72400^"
    "72500^71500^71400^71300^71200^71100^71000^70900^70800^70700^70600^12000^"
    "8000^9100^15000^7000^6100^5000^4000^3000^2000^15000^9000^8100^7000^6000^"
    "5500^5100^4500^3900^3000^71200^67100^0^0^0^0^0^0^3^0.00^3521047^-120^300^"
    "0^0^0";

inline constexpr std::string_view kKisCipherKey =
    "abcdefghijklmnopabcdefghijklmnop";
inline constexpr std::string_view kKisCipherIv = "0123456789abcdef";

// kKisTradeRecord encrypted at test-writing time (OpenSSL 3.0, PKCS#7):
//   KEY=$(printf '%s' abcdefghijklmnopabcdefghijklmnop | xxd -p -c 64)
//   IV=$(printf '%s' 0123456789abcdef | xxd -p)
//   printf '%s' "<kKisTradeRecord>" | openssl enc -aes-256-cbc -a -A -K $KEY
//   -iv $IV
inline constexpr std::string_view kKisEncryptedTradePayload =
    "w7wIZdMEa1uCEPCB6JnNhFgavH6GCN8drxWDDxaJSj0I77tCTeJJybq50raO2rTcUXA0yFVdnZ"
    "g1DsGYZpRrlDjkkAuJH/VI/LKjepoENt6ECgf2R7td56X9HpIC1D9ZwAob8kUoM4Mnd2l/"
    "bIbaD4SZIxgMU04Y90xmFwFExKjRAL4Hv3sjR4RWR8E4MPxmDn78LnDCJ1fcgL16bld66NgJCy"
    "mNC7MWLNpl/SGKLpbGo+5aIfs5D5RPN+MEavah50fm1QlQckSSr9ELaB9JBaD3BUgpwZ1OW21m"
    "6+tZeYLR4zbssqyjx1l712ifkWF3arwQfX7DxQ96PZMaT/VM5ug9PyMxJ2J+S+XGFC/kvNc=";

// The reference's own vector (made with Python `cryptography`).
inline constexpr std::string_view kKisReferenceNoticeFrame =
    "1|H0STCNI0|001|iX5nzm3yGp5pIhf4ljWKeRoTgoJmX0Su+3d99XpO5/"
    "xiYYrzH0OuIEn0eg4Gp4/mbhfpG2ECiC8qJ2P045sOh7Y8w9HAVeKsPufIb3c04udxOcaS735t"
    "YUqG1gI4O6RkzPbCatdOX7yW9CDBVrqTog==";
inline constexpr std::string_view kKisReferenceNoticePlaintext =
    "HTSUSER1^5012345601^0000012345^^02^0^00^0^005930^10^71500^093015^0^2^2^"
    "00950^10^HONG^^01^Y^^^^SAMSUNG^71500";

inline constexpr std::string_view kKisSubscribeSuccess =
    R"({"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},)"
    R"("body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS",)"
    R"("output":{"iv":"0123456789abcdef","key":"abcdefghijklmnopabcdefghijklmnop"}}})";
inline constexpr std::string_view kKisAlreadySubscribed =
    R"({"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},)"
    R"("body":{"rt_cd":"1","msg_cd":"OPSP0002","msg1":"ALREADY IN SUBSCRIBE"}})";
inline constexpr std::string_view kKisPingPong =
    R"({"header":{"tr_id":"PINGPONG","datetime":"20260715093100"}})";

// --- Kiwoom
// -----------------------------------------------------------------------

// The 0B entry of §2.9 with every FID of the full example.
inline constexpr std::string_view kKiwoomTradeEntry =
    R"({"type":"0B","name":"주식체결","item":"005930","values":{)"
    R"("20":"165208","10":"-20800","11":"-50","12":"-0.24","27":"-20800",)"
    R"("28":"-20700","15":"+82","13":"30379732","14":"632640","16":"20850",)"
    R"("17":"+21150","18":"-20450","25":"5","26":"-1057122",)"
    R"("29":"-22041267850","30":"-96.64","31":"36.67","32":"44",)"
    R"("228":"98.92","311":"17230","290":"2","691":"0","567":"000000",)"
    R"("568":"000000","851":"","1890":"","1891":"","1892":"","1030":"",)"
    R"("1031":"","1032":"","1071":"","1072":"","1313":"","1314":"",)"
    R"("1315":"","1316":"","1497":"","1498":"","620":"","732":"","852":"",)"
    R"("9081":"1"}})";

// A full 0D entry built from the FID table of §2.6 (the reference elides
// it): asks 20800 + 50·i and bids 20750 − 50·i, signed against the previous
// close like the feed; quantities 100·(i+1) and 200·(i+1).
inline constexpr std::string_view kKiwoomBookEntry =
    R"({"type":"0D","name":"주식호가잔량","item":"005930","values":{)"
    R"("13":"30379650","21":"165207","23":"20850","24":"332941",)"
    R"("41":"-20800","42":"+20850","43":"-20900","44":"+20950",)"
    R"("45":"-21000","46":"+21050","47":"-21100","48":"+21150",)"
    R"("49":"-21200","50":"+21250","51":"-20750","52":"+20700",)"
    R"("53":"-20650","54":"+20600","55":"-20550","56":"+20500",)"
    R"("57":"-20450","58":"+20400","59":"-20350","60":"+20300",)"
    R"("61":"100","62":"200","63":"300","64":"400","65":"500",)"
    R"("66":"600","67":"700","68":"800","69":"900","70":"1000",)"
    R"("71":"200","72":"400","73":"600","74":"800","75":"1000",)"
    R"("76":"1200","77":"1400","78":"1600","79":"1800","80":"2000",)"
    R"("81":"-0","82":"-1","83":"-2","84":"-3","85":"-4","86":"-5",)"
    R"("87":"-6","88":"-7","89":"-8","90":"-9","91":"+0","92":"+1",)"
    R"("93":"+2","94":"+3","95":"+4","96":"+5","97":"+6","98":"+7",)"
    R"("99":"+8","100":"+9","121":"5500","122":"-1036021",)"
    R"("125":"11000","126":"+1062126"}})";

// --- Settrade
// ---------------------------------------------------------------------

// BidOfferV3{symbol:"AOT", bid_price1:61.25, ask_price1:61.50,
// bid_volume1:10000, ask_volume1:25300, bid_flag:NORMAL, ask_flag:NORMAL}.
inline constexpr std::string_view kSettradeBidOfferHex =
    "0a03414f541207103d1880e59a773a08103d1880cab5ee0160904e8801d4c501b00101b8"
    "0101";
// InfoV3{symbol:"AOT", high:62, low:60.75, last:61.25,
// total_volume:12345600, change:+0.50, total_value:756123456,
// market_status:5}.
inline constexpr std::string_view kSettradeInfoHex =
    "0a03414f541202103e1a08103c1880afd0e5022207103d1880e59a772880c2f1053a0618"
    "80cab5ee01420610c08ec6e8024805";

}  // namespace examples::samples
