// The deployment this page serves and the wallet the user connected: reads go to the portal's
// read-only /rpc, signatures and transactions to the wallet, which alone holds the account key.
import {
  type Abi,
  type Address,
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  encodeFunctionData,
  type EIP1193Provider,
  getAddress,
  type Hex,
  http,
  type PublicClient,
  type TransactionReceipt,
  UserRejectedRequestError,
} from "viem";
import type { SignTypedData, TypedDataJson } from "../formats/bytes";

export type ContractName = "ParticipantRegistry" | "RecordRegistry" | "ConsentManager" | "KeeperDirectory";

export interface DevAccount {
  name: string;
  address: Address;
  role: string;
}

export interface Config {
  chainId: number;
  deploymentBlock: number;
  keySuite: "X25519" | "MLKEM768_X25519";
  contracts: Record<ContractName, { address: Address; abi: Abi }>;
  relayer: string | null;
  maxRecordBytes: number;
  devAccounts: DevAccount[] | null;
}

export const LOCAL_CHAIN_ID = 31337;

/** A refusal the user can act on: said in words, and nothing was changed. */
export class UserFacingError extends Error {}

export async function loadConfig(): Promise<Config> {
  const answer = await fetch("/config.json");
  if (!answer.ok) throw new UserFacingError(`the portal's configuration is unavailable (HTTP ${answer.status})`);
  return (await answer.json()) as Config;
}

export function publicClient(): PublicClient {
  return createPublicClient({ transport: http(new URL("/rpc", location.href).toString(), { batch: true }) });
}

export class Session {
  readonly names = new Map<string, string>();

  constructor(
    readonly config: Config,
    readonly chain: PublicClient,
    readonly provider: EIP1193Provider,
    readonly account: Address,
    readonly via: string,
  ) {
    for (const a of config.devAccounts ?? []) this.names.set(a.address.toLowerCase(), a.name);
  }

  /** A short name for an address: the demo's name for it, else the address shortened. */
  name = (address: string): string => {
    if (address.toLowerCase() === this.account.toLowerCase()) return "you";
    return this.names.get(address.toLowerCase()) ?? `${address.slice(0, 6)}…${address.slice(-4)}`;
  };

  contract(name: ContractName) {
    return this.config.contracts[name];
  }

  read<T>(name: ContractName, functionName: string, args: readonly unknown[] = []): Promise<T> {
    return this.chain.readContract({ ...this.contract(name), functionName, args }) as Promise<T>;
  }

  /** The chain's latest block time, in seconds: what grants and deadlines are judged against. */
  async now(): Promise<bigint> {
    return (await this.chain.getBlock({ blockTag: "latest" })).timestamp;
  }

  /**
   * Sends `functionName(args)` to `name` from the connected account: simulated first, so a call
   * the contract would refuse is said in words and never reaches the wallet; then signed and
   * sent by the wallet, and its receipt awaited.
   */
  async transact(name: ContractName, functionName: string, args: readonly unknown[]): Promise<TransactionReceipt> {
    const { address, abi } = this.contract(name);
    await this.ensureChain();
    try {
      await this.chain.simulateContract({ address, abi, functionName, args, account: this.account });
    } catch (error) {
      throw new UserFacingError(`The chain would refuse this: ${words(error)}. Nothing was sent.`);
    }
    const data = encodeFunctionData({ abi, functionName, args });
    const hash = await this.wallet<Hex>("eth_sendTransaction", [{ from: this.account, to: address, data }]);
    const receipt = await this.chain.waitForTransactionReceipt({ hash, pollingInterval: 250 });
    if (receipt.status !== "success") throw new UserFacingError(`transaction ${hash} failed on chain`);
    return receipt;
  }

  /** The wallet's eth_signTypedData_v4 of `document` (the exact JSON the CLI would sign). */
  signTypedData: SignTypedData = async (typedData) => {
    await this.ensureChain();
    const json = JSON.stringify(typedData, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
    return this.wallet<Hex>("eth_signTypedData_v4", [this.account, json]);
  };

  signDocument(document: TypedDataJson): Promise<Hex> {
    return this.signTypedData(document as never);
  }

  /** A wallet on another chain is asked to switch; one that does not know the chain is told how to add it. */
  async ensureChain(): Promise<void> {
    const current = Number(await this.provider.request({ method: "eth_chainId" }));
    if (current === this.config.chainId) return;
    const chainId = `0x${this.config.chainId.toString(16)}` as Hex;
    try {
      await this.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      if ((error as { code?: number }).code === 4902) {
        throw new UserFacingError(
          `Your wallet does not know chain ${this.config.chainId}: add it (the README's "The portal" says how) and try again.`,
        );
      }
      throw asUserError(error, `switch your wallet to chain ${this.config.chainId}`);
    }
  }

  private async wallet<T>(method: string, params: unknown[]): Promise<T> {
    try {
      return (await this.provider.request({ method, params } as never)) as T;
    } catch (error) {
      throw asUserError(error, method === "eth_sendTransaction" ? "send the transaction" : "sign");
    }
  }
}

/** The user's "no" in the wallet (EIP-1193 code 4001), said so; other wallet errors in its own words. */
export function asUserError(error: unknown, doing: string): Error {
  const code = (error as { code?: number }).code;
  if (code === 4001 || error instanceof UserRejectedRequestError) {
    return new UserFacingError(`You declined to ${doing} in your wallet: nothing was changed.`);
  }
  return new UserFacingError(`Your wallet could not ${doing}: ${(error as Error).message ?? String(error)}`);
}

/** A contract's refusal in words: its custom error's name and arguments, else viem's short message. */
export function words(error: unknown): string {
  if (error instanceof BaseError) {
    const revert = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName) {
      const args = (revert.data.args ?? []).map((a) => String(a)).join(", ");
      return REFUSALS[revert.data.errorName] ?? `${revert.data.errorName}(${args})`;
    }
    return error.shortMessage;
  }
  return (error as Error).message ?? String(error);
}

// The refusals a person meets in the portal, in words; the rest are shown by name.
const REFUSALS: Record<string, string> = {
  ParticipantRegistryAlreadyRegistered: "this account has registered this key already",
  RecordRegistryUnregisteredPatient: "the patient has not set up an encryption key yet",
  RecordRegistryUnauthorizedAuthor: "the patient has not allowed you to add records",
  RecordRegistryCategoryNotAllowed: "the patient has not allowed you to add records of this category",
  RecordRegistryNotAProvider: "only an accredited provider can be allowed to add records",
  RecordRegistrySelfWriter: "you cannot allow yourself: you can always add your own records",
  ConsentNoGrant: "there is no grant to revoke",
};

/** The address a user typed, checked: EIP-55 case if mixed, or a demo name. */
export function parseAddress(text: string, session: Session): Address {
  const value = text.trim();
  for (const [address, name] of session.names) if (name === value.toLowerCase()) return getAddress(address);
  try {
    return getAddress(value);
  } catch {
    throw new UserFacingError(`"${value}" is not an account address (0x followed by 40 hexadecimal digits)`);
  }
}
