"""The C++ half of the packet backend, compiled by cling (cppyy) the first time ns-3 is loaded.

Everything that runs per packet or per flow event lives here -- the Python side only builds the input
arrays, drives the simulation in segments and plays the OCS controller between them:

* ``Fabric::AddLink`` / ``Build``: point-to-point links with the given rate, delay, MTU and a root queue
  disc (drop-tail FIFO, or RED with ECN marking for DCTCP), one /30 subnet per link, global routing.
* ``Fabric::AddConnection`` / ``AddFlow`` / ``Start``: TCP bulk senders. A *connection* (src, dst, port)
  carries the flows of one chain between two hosts one after another (a collective keeps its
  connections open); a flow becomes active when its chain's previous stage has finished, plus its
  ``delay``; the receiver counts bytes and completes flows in the order they were queued.
* ``Fabric::SetLink``: the OCS controller's primitive -- a logical link goes dark (interfaces down,
  receive error model on so in-flight packets are lost) or comes up at a new rate; the caller then
  recomputes the global routes.
* ``PinnedRouting`` (``Fabric::EnablePinned`` / ``SetPinned``): a routing protocol on every switch, ahead
  of global routing, that forwards the packets of a (source GPU, destination GPU) pair over the next hops
  given for that pair, picking one per packet with probability proportional to its weight (one next hop:
  the pair's single path), or -- ``least_queued`` -- to the next hop with the least queued bytes per unit
  of weight (adaptive packet spraying). Pairs without an entry (ACKs of pairs that carry no data) fall through to
  global routing.
"""

from __future__ import annotations

CXX_SOURCE = r"""
#include <deque>
#include <map>
#include <vector>
#include <cstdint>
#include <algorithm>
#include <unordered_map>

namespace rfpkt {
using namespace ns3;

// forwards each (source, destination) address pair over its own weighted next hops
class PinnedRouting : public Ipv4RoutingProtocol {
 public:
  static TypeId GetTypeId() {
    static TypeId tid = TypeId("rfpkt::PinnedRouting").SetParent<Ipv4RoutingProtocol>().SetGroupName("Internet");
    return tid;
  }
  PinnedRouting() { rng = CreateObject<UniformRandomVariable>(); }

  void Clear() { table.clear(); }
  // least_queued: each packet to the next hop with the least queued bytes per unit weight (ties drawn
  // at random, weighted); otherwise a weighted random draw
  void SetLeastQueued(bool lq) { least_queued = lq; }
  void Add(uint32_t src, uint32_t dst, uint32_t ifi, Ipv4Address gw, double weight, Ptr<QueueDisc> qdisc,
           Ptr<PointToPointNetDevice> dev) {
    Entry& e = table[Key(src, dst)];
    e.hops.push_back(Hop{ifi, gw, weight, qdisc, dev});
    e.total += weight;
  }
  size_t Size() const { return table.size(); }

  Ptr<Ipv4Route> RouteOutput(Ptr<Packet>, const Ipv4Header&, Ptr<NetDevice>, Socket::SocketErrno& err) override {
    err = Socket::ERROR_NOROUTETOHOST;  // switches originate nothing: global routing answers
    return nullptr;
  }
  bool RouteInput(Ptr<const Packet> p, const Ipv4Header& h, Ptr<const NetDevice>, const UnicastForwardCallback& ucb,
                  const MulticastForwardCallback&, const LocalDeliverCallback&, const ErrorCallback&) override {
    auto it = table.find(Key(h.GetSource().Get(), h.GetDestination().Get()));
    if (it == table.end()) return false;
    Entry& e = it->second;
    size_t k = 0;
    if (e.hops.size() > 1) {
      if (least_queued) {
        double best = -1.0, tied = 0.0;
        for (size_t i = 0; i < e.hops.size(); ++i) {
          const Hop& c = e.hops[i];
          double q = (static_cast<double>(c.qdisc->GetNBytes()) + c.dev->GetQueue()->GetNBytes()) / c.weight;
          if (best < 0 || q < best) {
            best = q;
            tied = c.weight;
            k = i;
          } else if (q == best) {
            tied += c.weight;
            if (rng->GetValue(0.0, tied) < c.weight) k = i;  // weighted reservoir draw among the ties
          }
        }
      } else {
        double x = rng->GetValue(0.0, e.total);
        double cum = 0.0;
        for (k = 0; k + 1 < e.hops.size(); ++k) {
          cum += e.hops[k].weight;
          if (x < cum) break;
        }
      }
    }
    const Hop& hop = e.hops[k];
    if (!ipv4->IsUp(hop.ifi)) return false;
    Ptr<Ipv4Route> r = Create<Ipv4Route>();
    r->SetDestination(h.GetDestination());
    r->SetSource(ipv4->GetAddress(hop.ifi, 0).GetLocal());
    r->SetGateway(hop.gw);
    r->SetOutputDevice(ipv4->GetNetDevice(hop.ifi));
    ucb(r, p, h);
    return true;
  }
  void NotifyInterfaceUp(uint32_t) override {}
  void NotifyInterfaceDown(uint32_t) override {}
  void NotifyAddAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void NotifyRemoveAddress(uint32_t, Ipv4InterfaceAddress) override {}
  void SetIpv4(Ptr<Ipv4> i) override { ipv4 = i; }
  void PrintRoutingTable(Ptr<OutputStreamWrapper>, Time::Unit) const override {}

 private:
  struct Hop {
    uint32_t ifi;
    Ipv4Address gw;
    double weight;
    Ptr<QueueDisc> qdisc;
    Ptr<PointToPointNetDevice> dev;
  };
  struct Entry {
    std::vector<Hop> hops;
    double total = 0.0;
  };
  static uint64_t Key(uint32_t s, uint32_t d) { return (static_cast<uint64_t>(s) << 32) | d; }
  std::unordered_map<uint64_t, Entry> table;
  bool least_queued = false;
  Ptr<Ipv4> ipv4;
  Ptr<UniformRandomVariable> rng;
};

class Fabric {
 public:
  // ---- topology -------------------------------------------------------------------------------
  void CreateNodes(uint32_t n) {
    nodes.Create(n);
    InternetStackHelper stack;
    stack.Install(nodes);
  }

  // returns the link index
  // ``queue_u``/``queue_v``: queue-disc size (packets) of the port at u / at v
  int AddLink(uint32_t u, uint32_t v, double rate_bps, double delay_s, uint32_t mtu, uint32_t queue_u,
              uint32_t queue_v, int red_threshold_packets, bool fair) {
    PointToPointHelper p2p;
    double r = rate_bps > 0 ? rate_bps : 1e9;
    p2p.SetDeviceAttribute("DataRate", DataRateValue(DataRate(static_cast<uint64_t>(r))));
    p2p.SetDeviceAttribute("Mtu", UintegerValue(mtu));
    p2p.SetChannelAttribute("Delay", TimeValue(Seconds(delay_s)));
    p2p.SetQueue("ns3::DropTailQueue<Packet>", "MaxSize", QueueSizeValue(QueueSize(QueueSizeUnit::PACKETS, 2)));
    NetDeviceContainer devs = p2p.Install(nodes.Get(u), nodes.Get(v));
    QueueDiscContainer qdc;
    for (int k = 0; k < 2; ++k) {
    TrafficControlHelper tch;
    QueueSize qs(QueueSizeUnit::PACKETS, k == 0 ? queue_u : queue_v);
    if (red_threshold_packets > 0) {
      tch.SetRootQueueDisc("ns3::RedQueueDisc", "MaxSize", QueueSizeValue(qs), "UseEcn", BooleanValue(true),
                           "UseHardDrop", BooleanValue(false), "MeanPktSize", UintegerValue(mtu),
                           "QW", DoubleValue(1.0), "MinTh", DoubleValue(red_threshold_packets),
                           "MaxTh", DoubleValue(red_threshold_packets),
                           "LinkBandwidth", DataRateValue(DataRate(static_cast<uint64_t>(r))),
                           "LinkDelay", TimeValue(Seconds(delay_s)));
    } else if (fair) {
      // per-flow deficit round robin; CoDel's target/interval pushed out of reach: drops only when full
      tch.SetRootQueueDisc("ns3::FqCoDelQueueDisc", "MaxSize", QueueSizeValue(qs), "Target",
                           StringValue("1000s"), "Interval", StringValue("10000s"),
                           "DropBatchSize", UintegerValue(1), "Flows", UintegerValue(65536));
    } else {
      tch.SetRootQueueDisc("ns3::FifoQueueDisc", "MaxSize", QueueSizeValue(qs));
    }
    qdc.Add(tch.Install(devs.Get(k)));
    }
    Ipv4AddressHelper addr;
    uint32_t base = (10u << 24) + 4u * static_cast<uint32_t>(links.size());
    addr.SetBase(Ipv4Address(base), Ipv4Mask("255.255.255.252"));
    Ipv4InterfaceContainer ifc = addr.Assign(devs);
    Link l;
    l.dev[0] = DynamicCast<PointToPointNetDevice>(devs.Get(0));
    l.dev[1] = DynamicCast<PointToPointNetDevice>(devs.Get(1));
    l.node[0] = u;
    l.node[1] = v;
    l.addr[0] = ifc.GetAddress(0);
    l.addr[1] = ifc.GetAddress(1);
    for (int k = 0; k < 2; ++k) {
      Ptr<RateErrorModel> em = CreateObject<RateErrorModel>();
      em->SetUnit(RateErrorModel::ERROR_UNIT_PACKET);
      em->SetRate(1.0);
      em->Disable();
      l.dev[k]->SetReceiveErrorModel(em);
      l.em[k] = em;
      l.qdisc[k] = qdc.Get(k);
      l.qdisc[k]->TraceConnectWithoutContext("Drop", MakeCallback(&Fabric::OnDrop, this));
      l.qdisc[k]->TraceConnectWithoutContext("Mark", MakeCallback(&Fabric::OnMark, this));
    }
    l.up = true;
    links.push_back(l);
    return static_cast<int>(links.size()) - 1;
  }

  void OnDrop(Ptr<const QueueDiscItem>) { ++drops; }
  void OnMark(Ptr<const QueueDiscItem>, const char*) { ++marks; }

  // host address: the address of link ``link`` at node ``node``
  void SetHostAddress(uint32_t node, int link) {
    Link& l = links[link];
    host_addr[node] = (l.node[0] == node) ? l.addr[0] : l.addr[1];
  }

  // the OCS controller's primitive: rate <= 0 takes the link dark, otherwise up at ``rate_bps``
  void SetLink(int link, double rate_bps) {
    Link& l = links[link];
    bool up = rate_bps > 0;
    for (int k = 0; k < 2; ++k) {
      Ptr<Ipv4> ipv4 = nodes.Get(l.node[k])->GetObject<Ipv4>();
      int32_t ifi = ipv4->GetInterfaceForDevice(l.dev[k]);
      if (up) {
        l.dev[k]->SetDataRate(DataRate(static_cast<uint64_t>(rate_bps)));
        l.em[k]->Disable();
        ipv4->SetMetric(ifi, 1);
        if (!l.up) ipv4->SetUp(ifi);
      } else {
        l.em[k]->Enable();
        if (l.up) ipv4->SetDown(ifi);
      }
    }
    l.up = up;
  }

  // make-before-break: routes avoid the link (huge metric) while packets already on it still arrive
  void Drain(int link) {
    Link& l = links[link];
    for (int k = 0; k < 2; ++k) {
      Ptr<Ipv4> ipv4 = nodes.Get(l.node[k])->GetObject<Ipv4>();
      ipv4->SetMetric(ipv4->GetInterfaceForDevice(l.dev[k]), 0xffff);
    }
  }

  void RecomputeRoutes() { Ipv4GlobalRoutingHelper::RecomputeRoutingTables(); }

  // a PinnedRouting on each of the ``n`` nodes, consulted before global routing
  void EnablePinned(int n, const int64_t* node, bool least_queued) {
    for (int i = 0; i < n; ++i) {
      Ptr<Ipv4> ipv4 = nodes.Get(node[i])->GetObject<Ipv4>();
      Ptr<Ipv4ListRouting> list = DynamicCast<Ipv4ListRouting>(ipv4->GetRoutingProtocol());
      Ptr<PinnedRouting> pr = CreateObject<PinnedRouting>();
      pr->SetLeastQueued(least_queued);
      list->AddRoutingProtocol(pr, 10);
      pinned[static_cast<uint32_t>(node[i])] = pr;
    }
  }

  // replace every pinned table: entry i sends pair (src GPU node, dst GPU node) at ``node`` over ``link``
  // with weight ``weight``
  void SetPinned(int n, const int64_t* node, const int64_t* src, const int64_t* dst, const int64_t* link,
                 const double* weight) {
    for (auto& kv : pinned) kv.second->Clear();
    for (int i = 0; i < n; ++i) {
      Link& l = links[link[i]];
      int k = (l.node[0] == static_cast<uint32_t>(node[i])) ? 0 : 1;
      Ptr<Ipv4> ipv4 = nodes.Get(node[i])->GetObject<Ipv4>();
      uint32_t ifi = static_cast<uint32_t>(ipv4->GetInterfaceForDevice(l.dev[k]));
      pinned[static_cast<uint32_t>(node[i])]->Add(host_addr[static_cast<uint32_t>(src[i])].Get(),
                                                  host_addr[static_cast<uint32_t>(dst[i])].Get(), ifi, l.addr[1 - k],
                                                  weight[i], l.qdisc[k], l.dev[k]);
    }
  }
  void PopulateRoutes() { Ipv4GlobalRoutingHelper::PopulateRoutingTables(); }

  // ---- traffic --------------------------------------------------------------------------------
  // returns the connection index; ``port`` must be unique on the destination node
  int AddConnection(uint32_t src, uint32_t dst, uint16_t port) {
    Conn c;
    c.src = src;
    c.dst = dst;
    c.port = port;
    conns.push_back(c);
    return static_cast<int>(conns.size()) - 1;
  }

  // flows are added in order; ``group`` is the (chain, stage) group the flow belongs to
  void AddFlows(int n, const int64_t* conn, const double* bytes, const double* delay, const int64_t* group) {
    for (int i = 0; i < n; ++i) {
      flow_conn.push_back(conn[i]);
      flow_bytes.push_back(static_cast<uint64_t>(bytes[i] + 0.5));
      flow_delay.push_back(delay[i]);
      flow_group.push_back(group[i]);
      start_s.push_back(-1.0);
      finish_s.push_back(-1.0);
    }
  }

  // group g's successor (-1: none) and whether it starts at time zero
  void SetGroups(int n, const int64_t* next, const int64_t* initial) {
    group_next.assign(next, next + n);
    group_initial.assign(initial, initial + n);
    group_remaining.assign(n, 0);
    group_flows.assign(n, std::vector<int64_t>());
    for (size_t f = 0; f < flow_group.size(); ++f) {
      group_remaining[flow_group[f]] += 1;
      group_flows[flow_group[f]].push_back(static_cast<int64_t>(f));
    }
  }

  // open every connection now; the flows of the initial groups start at ``t0_s``
  void Start(double t0_s) {
    t0 = t0_s;
    Simulator::ScheduleNow(&Fabric::Open, this);
    done = 0;
    for (size_t g = 0; g < group_next.size(); ++g) {
      if (group_initial[g]) {
        for (int64_t f : group_flows[g]) {
          Simulator::Schedule(Seconds(t0_s + flow_delay[f]), &Fabric::Activate, this, f);
        }
      }
    }
    if (flow_bytes.empty()) Simulator::Stop();
  }

  // (inside the simulation, once the nodes are initialised) open every connection
  void Open() {
    for (size_t c = 0; c < conns.size(); ++c) {
      Conn& k = conns[c];
      Ptr<Socket> rx = Socket::CreateSocket(nodes.Get(k.dst), TcpSocketFactory::GetTypeId());
      rx->Bind(InetSocketAddress(Ipv4Address::GetAny(), k.port));
      rx->Listen();
      rx->SetAcceptCallback(MakeNullCallback<bool, Ptr<Socket>, const Address&>(),
                            MakeCallback(&Fabric::OnAccept, this));
      listen_conn[PeerKey(k.dst, k.port)] = static_cast<int64_t>(c);
      k.rx_listen = rx;
      Ptr<Socket> tx = Socket::CreateSocket(nodes.Get(k.src), TcpSocketFactory::GetTypeId());
      tx->Bind();
      tx->Connect(InetSocketAddress(host_addr[k.dst], k.port));
      tx->SetSendCallback(MakeCallback(&Fabric::OnSendSpace, this));
      tx_conn[PeekPointer(tx)] = static_cast<int64_t>(c);
      k.tx = tx;
    }
  }

  bool AllDone() const { return done == flow_bytes.size(); }
  uint64_t Done() const { return done; }
  double LastFinish() const { return last_finish; }

  std::vector<double> start_s, finish_s;
  uint64_t drops = 0, marks = 0;

 private:
  struct Link {
    Ptr<PointToPointNetDevice> dev[2];
    Ptr<RateErrorModel> em[2];
    Ptr<QueueDisc> qdisc[2];
    uint32_t node[2];
    Ipv4Address addr[2];
    bool up;
  };
  struct Conn {
    uint32_t src = 0, dst = 0;
    uint16_t port = 0;
    Ptr<Socket> tx, rx_listen;
    uint64_t target = 0, sent = 0, rcvd = 0;
    std::deque<std::pair<int64_t, uint64_t>> pending;  // (flow, cumulative byte count at its end)
  };

  static uint64_t PeerKey(uint32_t node, uint16_t port) { return (static_cast<uint64_t>(node) << 16) | port; }

  void Activate(int64_t f) {
    double now = Simulator::Now().GetSeconds();
    start_s[f] = now;
    if (flow_bytes[f] == 0) {
      Complete(f, now);
      return;
    }
    Conn& k = conns[flow_conn[f]];
    k.target += flow_bytes[f];
    k.pending.emplace_back(f, k.target);
    Pump(k);
  }

  void Pump(Conn& k) {
    while (k.sent < k.target) {
      uint32_t avail = k.tx->GetTxAvailable();
      if (avail == 0) break;
      uint64_t n = std::min<uint64_t>({static_cast<uint64_t>(avail), k.target - k.sent, 1u << 20});
      int r = k.tx->Send(Create<Packet>(static_cast<uint32_t>(n)));
      if (r <= 0) break;
      k.sent += static_cast<uint64_t>(r);
    }
  }

  void OnSendSpace(Ptr<Socket> s, uint32_t) {
    auto it = tx_conn.find(PeekPointer(s));
    if (it != tx_conn.end()) Pump(conns[it->second]);
  }

  void OnAccept(Ptr<Socket> s, const Address&) {
    Address local;
    s->GetSockName(local);
    InetSocketAddress a = InetSocketAddress::ConvertFrom(local);
    uint32_t node = s->GetNode()->GetId();
    auto it = listen_conn.find(PeerKey(node, a.GetPort()));
    if (it == listen_conn.end()) return;
    rx_conn[PeekPointer(s)] = it->second;
    accepted.push_back(s);
    s->SetRecvCallback(MakeCallback(&Fabric::OnRecv, this));
  }

  void OnRecv(Ptr<Socket> s) {
    auto it = rx_conn.find(PeekPointer(s));
    Ptr<Packet> p;
    while ((p = s->Recv())) {
      if (p->GetSize() == 0) break;
      if (it == rx_conn.end()) continue;
      Conn& k = conns[it->second];
      k.rcvd += p->GetSize();
      double now = Simulator::Now().GetSeconds();
      while (!k.pending.empty() && k.pending.front().second <= k.rcvd) {
        int64_t f = k.pending.front().first;
        k.pending.pop_front();
        Complete(f, now);
      }
    }
  }

  void Complete(int64_t f, double now) {
    finish_s[f] = now;
    last_finish = std::max(last_finish, now);
    ++done;
    int64_t g = flow_group[f];
    if (--group_remaining[g] == 0) {
      int64_t ng = group_next[g];
      while (ng >= 0) {
        if (!group_flows[ng].empty()) {
          for (int64_t f2 : group_flows[ng]) {
            Simulator::Schedule(Seconds(flow_delay[f2]), &Fabric::Activate, this, f2);
          }
          break;
        }
        ng = group_next[ng];
      }
    }
    if (done == flow_bytes.size()) Simulator::Stop();
  }

  NodeContainer nodes;
  std::vector<Link> links;
  std::vector<Conn> conns;
  std::map<uint32_t, Ipv4Address> host_addr;
  std::map<uint32_t, Ptr<PinnedRouting>> pinned;
  std::map<uint64_t, int64_t> listen_conn;
  std::map<Socket*, int64_t> tx_conn, rx_conn;
  std::vector<Ptr<Socket>> accepted;
  std::vector<int64_t> flow_conn, flow_group, group_next, group_initial, group_remaining;
  std::vector<uint64_t> flow_bytes;
  std::vector<double> flow_delay;
  std::vector<std::vector<int64_t>> group_flows;
  double t0 = 0.0, last_finish = 0.0;
  uint64_t done = 0;
};

}  // namespace rfpkt
"""
